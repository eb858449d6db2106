"""Executions: lease the endpoint, claim due orders, send them in signed payloads, ack.

Invariants (design.md), each with a test: no lost update (ack by version), caps per execution
and per payload, one execution per endpoint at a time (lease in the database), crash safety
(nothing is removed before the CRM said 2xx), retry budget with backoff kept in the database.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.models import Order
from webhooks.models import Endpoint

from . import outbox, payload, sending
from .models import Delivery, PendingOrder, RunStatus, RunTrigger, SyncRun

log = logging.getLogger(__name__)


def lease_length() -> dt.timedelta:
    """SYNC_LEASE_SECONDS (2 minutes): outlives one payload with room to spare (settings
    refuse less than twice the send timeout) and is renewed before each payload; a worker
    that dies holds the endpoint for at most this long."""
    return dt.timedelta(seconds=settings.SYNC_LEASE_SECONDS)


# This many failed payloads in a row end the execution: the CRM is down, stop knocking.
MAX_CONSECUTIVE_FAILURES = 3


def lease_acquire(*, endpoint_id: int, owner: str, now: dt.datetime) -> bool:
    """Take the endpoint's lease if it is free or expired; return whether we got it."""
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    taken = Endpoint.objects.filter(free, pk=endpoint_id).update(
        lease_owner=owner, lease_until=now + lease_length()
    )
    # Nothing updated: another execution holds it (or the endpoint is gone).
    return taken == 1


def lease_renew(*, endpoint_id: int, owner: str) -> bool:
    """Extend our lease; False if it expired and someone else took it."""
    return (
        Endpoint.objects.filter(pk=endpoint_id, lease_owner=owner).update(
            lease_until=timezone.now() + lease_length()
        )
        == 1
    )


def lease_release(*, endpoint_id: int, owner: str) -> None:
    Endpoint.objects.filter(pk=endpoint_id, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


def execution_run(*, endpoint_id: int, trigger: str = RunTrigger.SCHEDULE) -> SyncRun | None:
    """Run one execution for the endpoint now, in this process.

    Returns the SyncRun; None when another execution holds the endpoint, it is paused, or a
    scheduled execution finds nothing due.
    """
    owner = uuid.uuid4().hex
    if not lease_acquire(endpoint_id=endpoint_id, owner=owner, now=timezone.now()):
        log.info("endpoint %s: another execution is running; skipped", endpoint_id)
        return None
    # The execution starts once the lease is ours: the previous one has finished by then.
    now = timezone.now()
    try:
        endpoint = Endpoint.objects.get(pk=endpoint_id)
        if not endpoint.is_active:
            return None
        if endpoint.waiting_until:
            # The CRM asked us to wait (Retry-After): not even "run now" sends before then.
            log.info("endpoint %s: %s Skipped.", endpoint_id, endpoint.waiting_notice)
            return None
        # Executions left RUNNING by a worker that died: their lease expired, close them.
        SyncRun.objects.filter(endpoint_id=endpoint_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=now, note="The worker stopped mid-execution."
        )
        claimed = outbox.outbox_claim(endpoint=endpoint, limit=endpoint.max_orders_per_run, now=now)
        if not claimed and trigger == RunTrigger.SCHEDULE:
            # Nothing due: a scheduled tick leaves no empty execution behind (1440 a day).
            Endpoint.objects.filter(pk=endpoint_id).update(last_run_at=now)
            return None
        run = SyncRun.objects.create(
            endpoint=endpoint, trigger=trigger, started_at=now, orders_claimed=len(claimed)
        )
        _execute(run, endpoint, owner, claimed)
        return run
    finally:
        lease_release(endpoint_id=endpoint_id, owner=owner)


def _execute(
    run: SyncRun, endpoint: Endpoint, owner: str, claimed: Sequence[outbox.Claimed]
) -> None:
    consecutive_failures = 0
    with sending.new_client() as client:
        for start in range(0, len(claimed), endpoint.orders_per_payload):
            chunk = claimed[start : start + endpoint.orders_per_payload]
            if not lease_renew(endpoint_id=endpoint.pk, owner=owner):
                run.note = "Lease lost: another execution took over."
                break
            result, delivery = _deliver(run, endpoint, client, chunk)
            now = timezone.now()
            if result.ok:
                outbox.outbox_ack(
                    endpoint_id=endpoint.pk,
                    delivered=dict(zip(delivery.order_ids, delivery.versions, strict=True)),
                )
                run.orders_delivered += len(delivery.order_ids)
                consecutive_failures = 0
                continue
            if result.gone:
                Endpoint.objects.filter(pk=endpoint.pk).update(
                    is_active=False,
                    disabled_reason=f"The CRM answered 410 Gone at {now:%Y-%m-%d %H:%M} UTC.",
                )
                run.note = "410 Gone: the endpoint was disabled; its orders stay pending."
                break
            if result.retry_after is not None:
                until = now + result.retry_after
                outbox.outbox_defer(claimed=chunk, until=until)
                _endpoint_wait(endpoint_id=endpoint.pk, until=until)
                run.note = (
                    f"HTTP {result.status_code}: the CRM asked to wait until {until:%H:%M:%S} UTC."
                )
                run.orders_failed += len(chunk)
                break
            outbox.outbox_fail(
                endpoint=endpoint,
                claimed=chunk,
                sent=dict(zip(delivery.order_ids, delivery.versions, strict=True)),
                error=result.error,
                now=now,
            )
            run.orders_failed += len(chunk)
            consecutive_failures += 1
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                run.note = f"{consecutive_failures} payloads failed in a row: the CRM looks down."
                break
    run.finished_at = timezone.now()
    if run.orders_failed == 0 and not run.note:
        run.status = RunStatus.SUCCEEDED
    elif run.orders_delivered:
        run.status = RunStatus.PARTIAL
    else:
        run.status = RunStatus.FAILED if claimed else RunStatus.SUCCEEDED
    _close(run)
    Endpoint.objects.filter(pk=endpoint.pk).update(last_run_at=run.started_at)
    log.info(
        "execution %s endpoint %s: %s, claimed %s delivered %s failed %s in %s payloads",
        run.pk,
        endpoint.pk,
        run.status,
        run.orders_claimed,
        run.orders_delivered,
        run.orders_failed,
        run.payloads,
        extra={
            "run_id": run.pk,
            "endpoint_id": endpoint.pk,
            "status": run.status,
            "orders_claimed": run.orders_claimed,
            "orders_delivered": run.orders_delivered,
            "orders_failed": run.orders_failed,
        },
    )


def _close(run: SyncRun) -> None:
    """Record how the execution ended, unless the next execution already closed it as dead
    (our lease ran out while this worker was stalled): that verdict stands, and what we did
    in the meantime is added to it, with our real end."""
    counts = {
        "finished_at": run.finished_at,
        "orders_delivered": run.orders_delivered,
        "orders_failed": run.orders_failed,
        "payloads": run.payloads,
    }
    still_ours = SyncRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
    if not still_ours.update(status=run.status, note=run.note, **counts):
        SyncRun.objects.filter(pk=run.pk).update(**counts)
        run.refresh_from_db()


def _deliver(
    run: SyncRun, endpoint: Endpoint, client, chunk: Sequence[outbox.Claimed]
) -> tuple[sending.SendResult, Delivery]:
    """Serialize, sign and POST one payload; record it as a Delivery."""
    reasons = {c.order_id: c.reason for c in chunk}
    orders = list(
        Order.objects.filter(order_id__in=reasons)
        .prefetch_related("operations", "movements")
        .order_by("order_id")
    )
    gone = set(reasons) - {o.order_id for o in orders}
    if gone:  # deleted behind Django's back: nothing left to send, nothing to keep
        PendingOrder.objects.filter(endpoint=endpoint, order_id__in=gone).delete()
    # The current content goes out with its current version: a change made since the order
    # was queued rides along, and the ack below only clears up to the version we sent.
    payload_id = f"msg_{uuid.uuid4().hex}"
    at = timezone.now()
    body = payload.build_payload(
        payload_id=payload_id,
        endpoint_id=endpoint.pk,
        run_id=run.pk,
        sent_at=at,
        orders=[(order, reasons[order.order_id]) for order in orders],
        content_level=endpoint.content_level,
    )
    result = sending.post_payload(
        client=client, endpoint=endpoint, payload_id=payload_id, body=body, at=at
    )
    delivery = Delivery.objects.create(
        run=run,
        endpoint=endpoint,
        payload_id=payload_id,
        order_ids=[o.order_id for o in orders],
        versions=[o.sync_version for o in orders],
        attempted_at=at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        ok=result.ok,
        error=result.error,
        response_excerpt=result.excerpt,
    )
    run.payloads += 1
    log.info(
        "delivery %s run %s endpoint %s: %s orders, %s in %s ms %s",
        payload_id,
        run.pk,
        endpoint.pk,
        len(orders),
        result.status_code or "-",
        result.duration_ms,
        result.error,
        extra={
            "delivery_id": payload_id,
            "run_id": run.pk,
            "endpoint_id": endpoint.pk,
            "orders": len(orders),
            "status_code": result.status_code,
            "duration_ms": result.duration_ms,
        },
    )
    return result, delivery


def execution_request(*, endpoint: Endpoint) -> None:
    """Queue one execution of the endpoint on a worker, once the current transaction commits."""
    from .tasks import run_endpoint

    transaction.on_commit(lambda: run_endpoint.delay(endpoint.pk, RunTrigger.MANUAL))


def endpoints_claim_due(*, now: dt.datetime | None = None) -> list[int]:
    """Return the active endpoints whose execution is due (or whose last execution died
    holding the lease) and not running, moving each one's next_sync_at on by its frequency.
    The conditional update makes a second beat (or a tick that overlaps the previous one) find
    nothing to claim."""
    now = now or timezone.now()
    # A lease that expired without being released is an execution whose worker died: run
    # again now rather than a whole frequency later, so what it left unsent goes out.
    abandoned = Q(lease_until__lt=now) & ~Q(lease_owner="")
    # An execution still running (its lease live) keeps its endpoint unclaimed: the tick it
    # would have skipped is claimed at the first dispatcher tick after it ends, not a whole
    # frequency later.
    running = Q(lease_until__gte=now) & ~Q(lease_owner="")
    # Nor is an endpoint whose CRM asked us to wait (a frequency edit or an abandoned lease
    # could make it due before then): a tick spent on a skipped execution would push the
    # first send after the wait a whole frequency later.
    waiting = Q(wait_until__gt=now)
    due = (
        Endpoint.objects.filter(
            Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now) | abandoned, is_active=True
        )
        .exclude(running | waiting)
        .values_list("pk", "next_sync_at", "frequency_minutes", "lease_owner", "lease_until")
    )
    claimed = []
    for pk, next_sync_at, frequency, lease_owner, lease_until in due:
        claim = Endpoint.objects.filter(pk=pk, next_sync_at=next_sync_at)
        moved = {"next_sync_at": now + dt.timedelta(minutes=frequency)}
        if lease_owner and lease_until is not None and lease_until < now:
            # Cleared in the same update, so that it is claimed once.
            claim = claim.filter(lease_owner=lease_owner, lease_until=lease_until)
            moved |= {"lease_owner": "", "lease_until": None}
        if claim.update(**moved):
            claimed.append(pk)
    return claimed


def _endpoint_wait(*, endpoint_id: int, until: dt.datetime) -> None:
    """The CRM asked us to wait (Retry-After): no execution sends before `until`, and the
    schedule resumes then."""
    Endpoint.objects.filter(pk=endpoint_id).update(wait_until=until, next_sync_at=until)


def endpoint_send_test(*, endpoint: Endpoint) -> sending.SendResult:
    """POST a signed payload with no orders: checks URL, signature and authentication.

    It is sent even while the CRM's Retry-After wait runs: it is how an integrator checks
    that the CRM is back. A success ends the wait (the endpoint is due at the next tick); a
    Retry-After in its answer sets one, as an execution's would."""
    payload_id = f"msg_test_{uuid.uuid4().hex}"
    at = timezone.now()
    body = payload.build_payload(
        payload_id=payload_id,
        endpoint_id=endpoint.pk,
        run_id=None,
        sent_at=at,
        orders=[],
        content_level=endpoint.content_level,
    )
    with sending.new_client() as client:
        result = sending.post_payload(
            client=client, endpoint=endpoint, payload_id=payload_id, body=body, at=at
        )
    if result.ok:
        now = timezone.now()
        waiting = Endpoint.objects.filter(pk=endpoint.pk, wait_until__gt=now)
        waiting.update(wait_until=None, next_sync_at=now)
    elif result.retry_after is not None:
        _endpoint_wait(endpoint_id=endpoint.pk, until=timezone.now() + result.retry_after)
    return result


def deliveries_prune(*, older_than_days: int) -> int:
    """Delete deliveries (and executions left without any) older than the given days;
    return the deliveries deleted. The outbox is never touched: pending orders stay."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = Delivery.objects.filter(attempted_at__lt=cutoff).delete()
    SyncRun.objects.filter(started_at__lt=cutoff, deliveries__isnull=True).exclude(
        status=RunStatus.RUNNING
    ).delete()
    return deleted
