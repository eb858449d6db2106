"""Fault injection, end to end: two real Celery workers, beat (twice, by mistake), Redis and
PostgreSQL, 5,000 orders changing under our feet, and a CRM that fails in every way we know.

The promise checked at the end, from what both sides recorded: the CRM holds every order at
its latest version and content; no payload and no execution exceeded its cap; no two
executions of one endpoint overlapped; every parked order is listed and can be replayed.
Figures go to docs/reliability.md (CHAOS_REPORT=file collects them; CHAOS_ORDERS and
CHAOS_SECONDS make a longer soak by hand).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order
from orders.services import orders_bulk_upsert
from sync.imports import initial_import_create
from sync.models import Delivery, PendingOrder, RunStatus, SyncRun
from sync.payload import order_details
from tests import chaos
from tests.factories import UserFactory, orders_data
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

ORDERS = int(os.environ.get("CHAOS_ORDERS", 5000))
CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", 25))
SEED = int(os.environ.get("CHAOS_SEED", 360))

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL"),
    pytest.mark.skipif(chaos.NO_REDIS, reason="needs Redis on 127.0.0.1:6379"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def broker(monkeypatch):
    """Point this process's Celery producer at the suite's Redis database (the API's "run
    now" queues a task there), and empty that database first."""
    import redis

    from config.celery_app import app

    redis.Redis.from_url(chaos.REDIS_URL).flushdb()
    app.close()  # drop pooled connections to the previous broker
    # Celery reads the broker from these variables before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", chaos.REDIS_URL)
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", chaos.REDIS_URL)
    saved, app.conf.broker_transport_options = app.conf.broker_transport_options, {}
    assert app.connection_for_write().as_uri().endswith("/" + chaos.REDIS_URL.rsplit("/", 1)[1])
    yield app
    app.close()
    app.conf.broker_transport_options = saved


@pytest.fixture
def api() -> APIClient:
    user = UserFactory(is_staff=True, is_superuser=True)
    token = Token.objects.create(user=user)
    return token.key


def api_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def in_thread(target, *args) -> threading.Thread:
    """Run `target` in a thread with its own database connection, closed at the end."""

    def body():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def modify_orders(data: list[dict], until: threading.Event, seed: int, changes: Counter):
    """S-360 at work: batches of 1 to 25 orders modified, over and over."""
    rng = random.Random(seed)
    while not until.is_set():
        batch = rng.sample(data, rng.randint(1, 25))
        for order in batch:
            order["order_state"] = rng.choice(["CLOSED", "CANCELLED", "PROVISIONAL"])
            order["last_mod_date_time"] = timezone.now() + dt.timedelta(
                microseconds=rng.randint(0, 999)
            )
        result = orders_bulk_upsert(orders=batch)
        changes["batches"] += 1
        changes["orders"] += result.count("updated")
        time.sleep(rng.uniform(0.02, 0.1))


def press_run_now(token: str, endpoint_ids: list[int], until: threading.Event, hits: Counter):
    """A burst of impatient "run now" through the API, several a second per endpoint."""
    client = api_client(token)
    while not until.is_set():
        for endpoint_id in endpoint_ids:
            response = client.post(f"/api/v1/endpoints/{endpoint_id}/run/")
            status = response.status_code
            if status == 409 and "(Retry-After)" not in response.json()["detail"]:
                status = f"409: {response.json()['detail']}"  # refused for another reason
            hits[status] += 1
        time.sleep(0.25)


def edit_endpoints(token: str, endpoint_ids: list[int], until: threading.Event, hits: Counter):
    """An integrator saving the endpoints' settings while they sync (an edit must not write
    back the lease, the schedule or the secrets the executions hold)."""
    client = api_client(token)
    for edit in itertools.count():
        if until.is_set():
            return
        for endpoint_id in endpoint_ids:
            response = client.patch(
                f"/api/v1/endpoints/{endpoint_id}/", {"name": f"edit {edit}"}, format="json"
            )
            hits[response.status_code] += 1
        time.sleep(0.5)


def wait_until(condition, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def due_left() -> int:
    return PendingOrder.objects.filter(parked_at__isnull=True).count()


def parked_via_api(client: APIClient, endpoint: Endpoint) -> set[int]:
    """Every parked order of the endpoint, following the API's cursor pages."""
    found, url = set(), f"/api/v1/endpoints/{endpoint.pk}/parked/"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        found |= {row["orderId"] for row in response.json()["results"]}
        url = response.json()["next"]
    return found


def dispatcher_age() -> float:
    """Seconds since the dispatcher's last tick, as beat recorded it (what /health/ reads)."""
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from sync.tasks import DISPATCHER_TASK

    last = PeriodicTask.objects.get(task=DISPATCHER_TASK).last_run_at
    return (timezone.now() - last).total_seconds()


def test_chaos_two_workers_two_beats_a_faulty_crm_and_changing_orders(broker, api, tmp_path):
    crm = chaos.ChaosCRM(seed=SEED)
    chaos.dispatch_every_second()
    # Endpoint A sees every order from the start, at S-360's default caps. Endpoint B is
    # added later with an initial import, smaller caps and 3 attempts before parking.
    endpoint_a, secret_a = endpoint_create(
        data={"name": "CRM A", "url": crm.url("/a"), "frequency_minutes": 1}
    )
    crm.sides["/a"] = chaos.Side(secret_a)
    data = orders_data(ORDERS)
    for start in range(0, len(data), 1000):
        orders_bulk_upsert(orders=data[start : start + 1000])
    endpoint_b, secret_b = endpoint_create(
        data={
            "name": "CRM B",
            "url": crm.url("/b"),
            "frequency_minutes": 1,
            "max_orders_per_run": 200,
            "orders_per_payload": 20,
            "max_attempts": 3,
        }
    )
    crm.sides["/b"] = chaos.Side(secret_b)
    initial_import_create(
        endpoint=endpoint_b,
        created_from=timezone.now() - dt.timedelta(days=3650),
        created_to=timezone.now() + dt.timedelta(days=1),
    )
    endpoints = [endpoint_a, endpoint_b]
    assert PendingOrder.objects.count() == 2 * ORDERS

    processes = [
        chaos.worker("w1", tmp_path),
        chaos.worker("w2", tmp_path),
        chaos.beat("beat1", tmp_path),
        chaos.beat("beat2", tmp_path),  # a second beat, by mistake
    ]
    stop_changes, stop_pressing = threading.Event(), threading.Event()
    changes, hits, edits = Counter(), Counter(), Counter()
    started = time.monotonic()
    try:
        threads = [
            in_thread(modify_orders, data, stop_changes, SEED, changes),
            in_thread(press_run_now, api, [e.pk for e in endpoints], stop_pressing, hits),
            in_thread(edit_endpoints, api, [e.pk for e in endpoints], stop_changes, edits),
        ]
        # 1. Faults on, orders changing.
        time.sleep(CHAOS_SECONDS)
        # The beats record each tick as they send it (CELERY_BEAT_SYNC_EVERY), so /health/
        # sees a beat that ticks (every second here) as alive.
        assert dispatcher_age() < 5, dispatcher_age()
        stop_changes.set()
        threads[0].join(timeout=30)
        threads[2].join(timeout=30)
        # 2. Faults still on, until only parked orders are left.
        drained = wait_until(lambda: due_left() == 0, timeout=max(180, ORDERS / 20))
        assert drained, f"{due_left()} orders still due\n{chaos.logs_tail(tmp_path)}"
        # 3. The CRM recovers; support lists the parked orders and replays them.
        crm.faults_on = False
        client = api_client(api)
        parked = {}
        for endpoint in endpoints:
            in_db = set(
                PendingOrder.objects.filter(endpoint=endpoint, parked_at__isnull=False).values_list(
                    "order_id", flat=True
                )
            )
            assert parked_via_api(client, endpoint) == in_db
            parked[endpoint.name] = len(in_db)
            response = client.post(
                f"/api/v1/endpoints/{endpoint.pk}/parked/replay/", {}, format="json"
            )
            assert response.status_code == 200, response.content
        assert wait_until(lambda: PendingOrder.objects.count() == 0, timeout=180), (
            f"{PendingOrder.objects.count()} left\n{chaos.logs_tail(tmp_path)}"
        )
        # Let an execution that is still between payloads finish before reading the logs.
        stop_pressing.set()
        threads[1].join(timeout=30)
        assert wait_until(
            lambda: not SyncRun.objects.filter(status=RunStatus.RUNNING).exists(), timeout=30
        )
    finally:
        stop_changes.set()
        stop_pressing.set()
        chaos.stop(processes)
        crm.close()
    elapsed = time.monotonic() - started

    # --- The CRM holds every order at its latest version and content.
    lost, stale = {}, {}
    orders = {o.order_id: o for o in Order.objects.prefetch_related("operations", "movements")}
    for endpoint, side in ((endpoint_a, crm.sides["/a"]), (endpoint_b, crm.sides["/b"])):
        lost[endpoint.name] = len(set(orders) - set(side.held))
        stale[endpoint.name] = sum(
            1
            for order_id, (version, details) in side.held.items()
            if version != orders[order_id].sync_version
            or details != order_details(orders[order_id], endpoint.content_level)
        )
    assert lost == {"CRM A": 0, "CRM B": 0}
    assert stale == {"CRM A": 0, "CRM B": 0}
    assert crm.bad_signatures == 0

    # --- Caps, from our deliveries and from what the CRM received.
    deliveries = list(Delivery.objects.select_related("endpoint"))
    assert all(len(d.order_ids) <= d.endpoint.orders_per_payload for d in deliveries)
    caps = {"/a": endpoint_a.orders_per_payload, "/b": endpoint_b.orders_per_payload}
    assert all(r.orders <= caps[r.path] for r in crm.received)
    per_run = Counter()
    for d in deliveries:
        per_run[(d.endpoint, d.run_id)] += len(d.order_ids)
    assert all(sent <= endpoint.max_orders_per_run for (endpoint, _), sent in per_run.items())
    runs = list(SyncRun.objects.select_related("endpoint"))
    assert all(r.orders_claimed <= r.endpoint.max_orders_per_run for r in runs)

    # --- No two executions of one endpoint overlapped: the runs' own intervals, the span of
    # each run's recorded deliveries, and the order in which the CRM saw their payloads.
    overlaps = []
    by_endpoint = defaultdict(list)
    for r in runs:
        by_endpoint[r.endpoint_id].append((r.pk, r.started_at, r.finished_at))
    for intervals in by_endpoint.values():
        overlaps += chaos.overlapping(intervals)
    spans = defaultdict(lambda: [None, None])
    for d in deliveries:
        span = spans[(d.endpoint_id, d.run_id)]
        end = d.attempted_at + dt.timedelta(milliseconds=d.duration_ms)
        span[0] = d.attempted_at if span[0] is None else min(span[0], d.attempted_at)
        span[1] = end if span[1] is None else max(span[1], end)
    by_endpoint = defaultdict(list)
    for (endpoint_id, run_id), (first, last) in spans.items():
        by_endpoint[endpoint_id].append((run_id, first, last))
    for intervals in by_endpoint.values():
        overlaps += chaos.overlapping(intervals)
    seen_by_crm = defaultdict(list)
    for r in crm.received:
        seen_by_crm[r.path].append(r.run_id)
    for sequence in seen_by_crm.values():  # a run's payloads arrive together, never interleaved
        finished = set()
        for before, after in itertools.pairwise(sequence):
            if after != before:
                finished.add(before)
                assert after not in finished, f"run {after} resumed after run {before}"
    assert overlaps == []

    duplicates = sum(
        times - 1 for side in crm.sides.values() for times in side.applied.values() if times > 1
    )
    chaos.write_report(
        {
            "test": "chaos",
            "orders": ORDERS,
            "chaos_seconds": CHAOS_SECONDS,
            "elapsed_seconds": round(elapsed, 1),
            "modification_batches": changes["batches"],
            "orders_modified": changes["orders"],
            "run_now_requests": sum(hits.values()),
            "run_now_statuses": dict(hits),
            "payloads_inside_retry_after": len(crm.inside_retry_after),
            "endpoint_edits": sum(edits.values()),
            "payloads_received": len(crm.received),
            "faults": dict(crm.faults),
            "faults_total": sum(crm.faults.values()),
            "orders_sent": sum(r.orders for r in crm.received),
            "orders_applied": sum(sum(s.applied.values()) for s in crm.sides.values()),
            "duplicates_delivered": duplicates,
            "orders_lost": sum(lost.values()) + sum(stale.values()),
            "executions": len(runs),
            "executions_overlapping": len(overlaps),
            "parked_then_replayed": parked,
        }
    )
    # The run really was hostile: every kind of fault, resends, parking, changes in flight.
    assert crm.faults.keys() == chaos.FAULTS.keys(), crm.faults
    assert duplicates > 0 and parked["CRM B"] > 0 and changes["orders"] > 0
    # "Run now" is queued (202), or refused (409) while the CRM's Retry-After is ahead.
    assert hits.keys() <= {202, 409} and hits[202] > 0, hits
    # No payload reached the CRM inside a wait it asked for, "run now" or not.
    assert crm.inside_retry_after == [], crm.inside_retry_after
    assert edits.keys() == {200} and edits[200] > 0, edits


def test_a_worker_killed_mid_execution_loses_nothing(broker, tmp_path):
    """SIGKILL in the middle of an execution: the run stays RUNNING and holds the lease; once
    the lease expires the dispatcher runs the endpoint again, on the other worker, which
    closes the dead run and sends every order not acknowledged. Nothing is lost."""
    crm = chaos.ChaosCRM(seed=SEED)
    crm.faults_on, crm.latency = False, 0.4
    chaos.dispatch_every_second()
    endpoint, secret = endpoint_create(
        data={"name": "CRM", "url": crm.url("/a"), "frequency_minutes": 60}
    )
    crm.sides["/a"] = chaos.Side(secret)
    orders_bulk_upsert(orders=orders_data(400))  # 8 payloads of 50
    first = chaos.worker("w1", tmp_path)
    processes = [first, chaos.beat("beat", tmp_path)]
    try:
        # The third payload is at the CRM (which will apply it): kill the worker now.
        assert wait_until(lambda: len(crm.received) >= 3, timeout=60, every=0.02), chaos.logs_tail(
            tmp_path
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        dead_run = SyncRun.objects.get()
        lease_until = Endpoint.objects.get().lease_until
        assert dead_run.status == RunStatus.RUNNING and lease_until > timezone.now()
        processes.append(chaos.worker("w2", tmp_path))
        assert wait_until(lambda: PendingOrder.objects.count() == 0, timeout=90), chaos.logs_tail(
            tmp_path
        )
        assert wait_until(
            lambda: not SyncRun.objects.filter(status=RunStatus.RUNNING).exists(), timeout=30
        )
    finally:
        chaos.stop(processes)
        crm.close()

    dead_run.refresh_from_db()
    assert dead_run.status == RunStatus.FAILED
    assert "stopped mid-execution" in dead_run.note
    later = SyncRun.objects.exclude(pk=dead_run.pk)
    assert later.exists()
    assert all(run.started_at >= lease_until for run in later)  # nobody jumped the lease
    orders = {o.order_id: o for o in Order.objects.prefetch_related("operations", "movements")}
    held = crm.sides["/a"].held
    assert set(held) == set(orders)
    assert all(
        version == orders[order_id].sync_version
        and details == order_details(orders[order_id], endpoint.content_level)
        for order_id, (version, details) in held.items()
    )
    acked_before_kill = sum(
        len(d.order_ids) for d in Delivery.objects.filter(run=dead_run, ok=True)
    )
    resent = sum(times - 1 for times in crm.sides["/a"].applied.values())
    chaos.write_report(
        {
            "test": "sigkill",
            "orders": len(orders),
            "acknowledged_before_kill": acked_before_kill,
            "duplicates_delivered": resent,  # the payload in flight when the worker died
            "orders_lost": 0,
            "recovered_after_lease_seconds": round(
                (later.earliest("started_at").started_at - lease_until).total_seconds(), 1
            ),
        }
    )
    assert acked_before_kill == 100 and resent <= 50
