"""The sync engine's invariants (design.md), against a real local HTTP server as the CRM."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from orders.models import Order
from orders.services import order_data_from_instance, order_upsert, orders_bulk_upsert
from sync import outbox, sending, services
from sync.models import Delivery, PendingOrder, RunStatus, RunTrigger, SyncReason, SyncRun
from sync.outbox import retry_delay
from tests.factories import create_orders, order_data, orders_data
from webhooks.models import AuthType, Endpoint
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db


class CRM:
    """A stand-in CRM on pytest-httpserver: records every delivery, answers as told."""

    def __init__(self, httpserver, secret: str):
        self.server = httpserver
        self.secret = secret
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.answers: list[Response] = []  # consumed in order; then 200
        httpserver.expect_request("/crm/webhook", method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        self.headers.append(dict(request.headers))
        self.bodies.append(Webhook(self.secret).verify(body, dict(request.headers)))
        if self.answers:
            return self.answers.pop(0)
        return Response('{"ok": true}', status=200, content_type="application/json")

    @property
    def orders(self) -> list[dict]:
        return [entry for body in self.bodies for entry in body["orders"]]


@pytest.fixture
def endpoint_and_crm(httpserver):
    def make(**settings) -> tuple[Endpoint, CRM]:
        endpoint, secret = endpoint_create(
            data={"name": "CRM", "url": httpserver.url_for("/crm/webhook"), **settings}
        )
        return endpoint, CRM(httpserver, secret)

    return make


def run(endpoint: Endpoint) -> SyncRun:
    result = services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    assert result is not None
    return result


def pending(endpoint: Endpoint) -> int:
    return PendingOrder.objects.filter(endpoint=endpoint).count()


# --- delivery and the wire contract ---------------------------------------------------------


def test_every_changed_order_reaches_the_crm_signed_with_its_version(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    orders = create_orders(12)
    execution = run(endpoint)
    assert execution.status == RunStatus.SUCCEEDED
    assert (execution.orders_claimed, execution.orders_delivered, execution.payloads) == (12, 12, 1)
    assert sorted(o["orderDetailsData"]["orderId"] for o in crm.orders) == sorted(
        o["order_id"] for o in orders
    )
    assert {(o["syncVersion"], o["syncReason"]) for o in crm.orders} == {(1, "CHANGE")}
    assert pending(endpoint) == 0
    body, headers = crm.bodies[0], crm.headers[0]
    assert body["type"] == "orders.sync"
    assert body["id"] == headers["Webhook-Id"]
    assert (body["endpointId"], body["runId"]) == (endpoint.pk, execution.pk)
    assert headers["Content-Type"] == "application/json"
    delivery = Delivery.objects.get(run=execution)
    assert delivery.ok and delivery.status_code == 200 and delivery.payload_id == body["id"]
    assert delivery.response_excerpt == '{"ok": true}'


def test_the_payload_carries_the_s360_order_details(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    data = order_data(sale_amount=40000, contact_reference="0004242")
    order_upsert(data=data)
    run(endpoint)
    (entry,) = crm.orders
    details = entry["orderDetailsData"]
    assert details["orderId"] == data["order_id"]
    assert details["saleAmount"] == 40000
    assert details["contactReference"] == "0004242"
    assert details["catalogCurrency"]["currencyCode"] == data["currency_code"]
    assert dt.datetime.fromisoformat(details["creationDateTime"]) == data["creation_date_time"]
    assert dt.datetime.fromisoformat(details["lastModDateTime"]) == data["last_mod_date_time"]
    assert len(details["operationDatas"]) == len(data["operations"])
    assert len(details["movementDatas"]) == len(data["movements"])
    assert {"operationId", "kind", "quantity", "unitPrice", "totalAmount"} <= set(
        details["operationDatas"][0]
    )


def test_content_level_operations_leaves_movements_out(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(content_level="OPERATIONS")
    create_orders(2)
    run(endpoint)
    assert all("movementDatas" not in o["orderDetailsData"] for o in crm.orders)
    assert all(o["orderDetailsData"]["operationDatas"] for o in crm.orders)


@pytest.mark.parametrize(
    "auth, expected",
    [
        (
            {"auth_type": AuthType.BASIC, "auth_username": "crm", "auth_secret": "pw"},
            ("Authorization", "Basic Y3JtOnB3"),
        ),
        ({"auth_type": AuthType.BEARER, "auth_secret": "tok"}, ("Authorization", "Bearer tok")),
        (
            {"auth_type": AuthType.HEADER, "auth_username": "X-Api-Key", "auth_secret": "k1"},
            ("X-Api-Key", "k1"),
        ),
    ],
)
def test_extra_authentication_is_sent(endpoint_and_crm, auth, expected):
    endpoint, crm = endpoint_and_crm(**auth)
    create_orders(1)
    run(endpoint)
    header, value = expected
    assert crm.headers[0][header] == value


def test_an_endpoint_only_gets_orders_its_filters_accept(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(filter_sales_channels=["WEB"], filter_order_states=["CLOSED"])
    orders = create_orders(40)
    run(endpoint)
    expected = {
        o["order_id"]
        for o in orders
        if o["sales_channel_code"] == "WEB" and o["order_state"] == "CLOSED"
    }
    assert expected
    assert {o["orderDetailsData"]["orderId"] for o in crm.orders} == expected


def test_orders_changed_before_the_endpoint_existed_are_not_sent(endpoint_and_crm):
    create_orders(3)
    endpoint, crm = endpoint_and_crm()
    assert run(endpoint).orders_claimed == 0
    assert crm.bodies == []


# --- caps -----------------------------------------------------------------------------------


def test_caps_per_execution_and_per_payload(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(max_orders_per_run=7, orders_per_payload=3)
    create_orders(10)
    execution = run(endpoint)
    assert [len(b["orders"]) for b in crm.bodies] == [3, 3, 1]
    assert (execution.orders_delivered, pending(endpoint)) == (7, 3)
    run(endpoint)
    assert [len(b["orders"]) for b in crm.bodies] == [3, 3, 1, 3]
    assert pending(endpoint) == 0
    assert len({o["orderDetailsData"]["orderId"] for o in crm.orders}) == 10


def test_defaults_are_s360s_500_per_execution_and_50_per_payload(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    orders_bulk_upsert(orders=orders_data(520, ticket_lines=0))
    execution = run(endpoint)
    assert execution.orders_delivered == 500
    assert [len(b["orders"]) for b in crm.bodies] == [50] * 10
    assert pending(endpoint) == 20


# --- no spurious pushes, no lost update -------------------------------------------------------


def test_an_identical_resave_sends_nothing(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    (data,) = create_orders(1)
    run(endpoint)
    stored = Order.objects.prefetch_related("operations", "movements").get(pk=data["order_id"])
    order_upsert(data=order_data_from_instance(stored))
    assert pending(endpoint) == 0
    assert run(endpoint).orders_claimed == 0
    assert len(crm.bodies) == 1


def test_an_order_changed_while_in_flight_is_sent_again_with_its_new_version(
    endpoint_and_crm, monkeypatch
):
    endpoint, crm = endpoint_and_crm()
    (data,) = create_orders(1)
    real_post = sending.post_payload

    def post_then_change(**kwargs):
        result = real_post(**kwargs)  # the CRM holds version 1 now...
        if len(crm.bodies) == 1:  # ...and S-360 changes the order before our ack
            order_upsert(data={**data, "order_state": "CANCELLED", "last_mod_date_time": None})
        return result

    monkeypatch.setattr(sending, "post_payload", post_then_change)
    run(endpoint)
    assert PendingOrder.objects.get(endpoint=endpoint).version == 2  # not acked away
    run(endpoint)
    assert [o["syncVersion"] for o in crm.orders] == [1, 2]
    assert crm.orders[1]["orderDetailsData"]["orderState"] == "CANCELLED"
    assert pending(endpoint) == 0


def test_a_change_queued_after_the_claim_goes_out_in_that_payload_at_its_new_version(
    endpoint_and_crm, monkeypatch
):
    """The payload carries the order's current content; the ack clears up to what was sent."""
    endpoint, crm = endpoint_and_crm()
    (data,) = create_orders(1)
    real_claim = outbox.outbox_claim

    def claim_then_change(**kwargs):
        claimed = real_claim(**kwargs)
        order_upsert(data={**data, "order_state": "CANCELLED", "last_mod_date_time": None})
        return claimed

    monkeypatch.setattr(outbox, "outbox_claim", claim_then_change)
    run(endpoint)
    assert [o["syncVersion"] for o in crm.orders] == [2]
    assert pending(endpoint) == 0


# --- failures, retries, parking --------------------------------------------------------------


def test_a_500_is_retried_at_the_next_executions_then_backed_off(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    create_orders(2)
    crm.answers = [Response("down", status=500)] * 4
    for attempt in (1, 2, 3):
        execution = run(endpoint)
        assert (execution.status, execution.orders_failed) == (RunStatus.FAILED, 2)
        row = PendingOrder.objects.filter(endpoint=endpoint).first()
        assert (row.attempts, row.last_error) == (attempt, "HTTP 500")
        assert row.due_at <= timezone.now()  # due again at the very next execution
    run(endpoint)  # 4th failure: now spaced out
    row = PendingOrder.objects.filter(endpoint=endpoint).first()
    assert row.attempts == 4
    assert row.due_at > timezone.now() + dt.timedelta(minutes=29)
    assert run(endpoint).orders_claimed == 0  # not due yet
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=31)):
        assert run(endpoint).orders_delivered == 2
    assert pending(endpoint) == 0


def test_an_order_changed_while_its_failing_payload_is_in_flight_keeps_its_budget(
    endpoint_and_crm, monkeypatch
):
    """The failure counts against the version that was sent; the new version was never
    tried, so it is due at the next execution with its budget whole (and parks no sooner)."""
    endpoint, crm = endpoint_and_crm(max_attempts=1)
    changing, steady = create_orders(2)
    crm.answers = [Response("down", status=500)]
    real_post = sending.post_payload

    def post_then_change(**kwargs):
        result = real_post(**kwargs)
        if len(crm.bodies) == 1:
            order_upsert(data={**changing, "order_state": "CANCELLED", "last_mod_date_time": None})
        return result

    monkeypatch.setattr(sending, "post_payload", post_then_change)
    assert run(endpoint).orders_failed == 2
    rows = {r.order_id: r for r in PendingOrder.objects.filter(endpoint=endpoint)}
    assert rows[steady["order_id"]].parked_at is not None  # its one attempt is spent
    changed = rows[changing["order_id"]]
    assert (changed.version, changed.attempts, changed.parked_at) == (2, 0, None)
    assert changed.due_at <= timezone.now()
    assert run(endpoint).orders_delivered == 1
    assert crm.orders[-1]["syncVersion"] == 2


def test_the_retry_delays_double_from_30_minutes_up_to_a_day():
    delays = [retry_delay(n) for n in range(1, 13)]
    minutes = [int(d.total_seconds() // 60) for d in delays]
    assert minutes == [0, 0, 0, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440]
    # the default budget of 12 spans about four days of CRM outage
    assert dt.timedelta(days=3) < sum(delays[:11], dt.timedelta()) < dt.timedelta(days=5)


def test_an_order_is_parked_with_its_last_error_after_the_budget_and_can_be_replayed(
    endpoint_and_crm,
):
    endpoint, crm = endpoint_and_crm(max_attempts=2)
    (_data,) = create_orders(1)
    crm.answers = [Response("nope", status=500), Response("bad gateway", status=502)]
    run(endpoint)
    run(endpoint)
    row = PendingOrder.objects.get(endpoint=endpoint)
    assert row.parked_at is not None
    assert (row.attempts, row.last_error) == (2, "HTTP 502")
    assert run(endpoint).orders_claimed == 0  # parked: never sent, never dropped
    assert outbox.outbox_replay(pending=PendingOrder.objects.filter(endpoint=endpoint)) == 1
    assert run(endpoint).orders_delivered == 1
    assert pending(endpoint) == 0


def test_a_new_version_of_a_parked_order_unparks_it(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(max_attempts=1)
    (data,) = create_orders(1)
    crm.answers = [Response("no", status=500)]
    run(endpoint)
    assert PendingOrder.objects.get(endpoint=endpoint).parked_at is not None
    order_upsert(data={**data, "order_state": "CANCELLED", "last_mod_date_time": None})
    row = PendingOrder.objects.get(endpoint=endpoint)
    assert (row.parked_at, row.attempts, row.version) == (None, 0, 2)


def test_a_timeout_is_a_failure_retried_later(endpoint_and_crm, httpserver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    slow = Response("late", status=200)
    crm.answers = [slow]
    real_handle = crm._handle

    def slow_handle(request):
        time.sleep(0.6)
        return real_handle(request)

    httpserver.clear()
    httpserver.expect_request("/crm/webhook", method="POST").respond_with_handler(slow_handle)
    execution = run(endpoint)
    assert execution.status == RunStatus.FAILED
    row = PendingOrder.objects.get(endpoint=endpoint)
    assert row.attempts == 1 and row.last_error.startswith("Timeout")


def test_connection_refused_is_a_failure_retried_later(db):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint, _ = endpoint_create(data={"name": "down", "url": f"http://127.0.0.1:{port}/hook"})
    create_orders(1)
    execution = run(endpoint)
    assert execution.status == RunStatus.FAILED
    row = PendingOrder.objects.get(endpoint=endpoint)
    assert row.attempts == 1 and "ConnectError" in row.last_error
    assert Delivery.objects.get(run=execution).status_code is None


def test_410_gone_disables_the_endpoint_and_keeps_its_orders(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(orders_per_payload=1)
    create_orders(3)
    crm.answers = [Response("gone", status=410)]
    execution = run(endpoint)
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "410" in endpoint.disabled_reason
    assert execution.payloads == 1 and "410" in execution.note
    assert pending(endpoint) == 3
    assert services.execution_run(endpoint_id=endpoint.pk) is None  # disabled: no execution


def test_429_with_retry_after_ends_the_execution_and_is_honoured(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(orders_per_payload=2)
    create_orders(6)
    crm.answers = [Response("slow down", status=429, headers={"Retry-After": "120"})]
    before = timezone.now()
    execution = run(endpoint)
    assert execution.payloads == 1  # ended at once
    endpoint.refresh_from_db()
    assert endpoint.next_sync_at >= before + dt.timedelta(seconds=119)
    deferred = PendingOrder.objects.filter(
        endpoint=endpoint, due_at__gt=before + dt.timedelta(seconds=119)
    )
    assert deferred.count() == 2
    assert all(row.attempts == 0 for row in PendingOrder.objects.filter(endpoint=endpoint))
    # The wait is the endpoint's: neither "run now" nor the dispatcher sends anything before
    # it ends, not even the orders the refused payload did not hold.
    assert endpoint.waiting_until == endpoint.wait_until
    assert endpoint.wait_until >= before + dt.timedelta(seconds=119)
    for trigger in (RunTrigger.MANUAL, RunTrigger.SCHEDULE):
        assert services.execution_run(endpoint_id=endpoint.pk, trigger=trigger) is None
    assert services.endpoints_claim_due() == []
    assert len(crm.bodies) == 1
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=121)):
        assert services.endpoints_claim_due() == [endpoint.pk]
        assert Endpoint.objects.get(pk=endpoint.pk).waiting_until is None
        assert run(endpoint).orders_delivered == 6


def test_a_wait_holds_the_dispatcher_too_and_ends_with_a_test_payload_or_a_new_url(
    endpoint_and_crm,
):
    """While the CRM's wait runs, the dispatcher does not claim the endpoint even if it is
    due (a shorter frequency, an abandoned lease): the claimed tick would be spent on an
    execution that sends nothing. A test payload is sent anyway (how an integrator checks
    the CRM is back): its Retry-After sets a wait, its success ends it. A new URL is
    another server: the old one's wait does not apply."""
    from webhooks.services import endpoint_update

    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    until = timezone.now() + dt.timedelta(minutes=10)
    Endpoint.objects.filter(pk=endpoint.pk).update(wait_until=until, next_sync_at=until)
    endpoint_update(endpoint=endpoint, data={"frequency_minutes": 1})  # due again at once
    assert Endpoint.objects.get(pk=endpoint.pk).next_sync_at <= timezone.now() + dt.timedelta(
        minutes=1
    )
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=2)):
        assert services.endpoints_claim_due() == []
    # A test payload answered 429 sets the wait, as an execution's payload would.
    Endpoint.objects.filter(pk=endpoint.pk).update(wait_until=None)
    crm.answers = [Response("busy", status=429, headers={"Retry-After": "300"})]
    assert not services.endpoint_send_test(endpoint=endpoint).ok
    assert Endpoint.objects.get(pk=endpoint.pk).waiting_until is not None
    assert services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL) is None
    # The CRM is back: a successful test payload ends the wait; the endpoint is due now.
    assert services.endpoint_send_test(endpoint=endpoint).ok
    after = Endpoint.objects.get(pk=endpoint.pk)
    assert after.wait_until is None and after.next_sync_at <= timezone.now()
    assert services.endpoints_claim_due() == [endpoint.pk]
    assert run(endpoint).orders_delivered == 1
    # A wait, then the integrator points the endpoint elsewhere: the wait is gone.
    Endpoint.objects.filter(pk=endpoint.pk).update(wait_until=until)
    endpoint_update(endpoint=after, data={"url": crm.server.url_for("/crm/webhook?v=2")})
    assert Endpoint.objects.get(pk=endpoint.pk).wait_until is None


def test_503_with_an_http_date_retry_after_is_honoured(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    later = timezone.now() + dt.timedelta(minutes=10)
    crm.answers = [
        Response(
            "maintenance",
            status=503,
            headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")},
        )
    ]
    run(endpoint)
    row = PendingOrder.objects.get(endpoint=endpoint)
    assert row.due_at >= later - dt.timedelta(seconds=2)
    assert row.attempts == 0


def test_a_redirect_is_not_followed(endpoint_and_crm, httpserver):
    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    crm.answers = [Response("", status=302, headers={"Location": httpserver.url_for("/other")})]
    execution = run(endpoint)
    assert execution.status == RunStatus.FAILED
    assert "redirects are not followed" in Delivery.objects.get(run=execution).error
    assert len(crm.bodies) == 1


def test_consecutive_failed_payloads_end_the_execution_early(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(orders_per_payload=1)
    create_orders(6)
    crm.answers = [Response("x", status=500)] * 6
    execution = run(endpoint)
    assert execution.payloads == services.MAX_CONSECUTIVE_FAILURES == 3
    assert "in a row" in execution.note
    untouched = PendingOrder.objects.filter(endpoint=endpoint, attempts=0).count()
    assert untouched == 3


def test_a_url_that_became_private_is_refused_at_send_time(endpoint_and_crm, settings):
    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False  # the CRM's host now resolves to loopback
    execution = run(endpoint)
    assert crm.bodies == []
    assert "Refused" in Delivery.objects.get(run=execution).error
    assert pending(endpoint) == 1


# --- one execution per endpoint, crash safety ------------------------------------------------


def test_an_endpoint_under_lease_is_not_run_twice(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm()
    create_orders(1)
    assert services.lease_acquire(endpoint_id=endpoint.pk, owner="other", now=timezone.now())
    assert services.execution_run(endpoint_id=endpoint.pk) is None
    assert crm.bodies == []


def test_an_edit_saved_while_an_execution_runs_keeps_its_lease_schedule_and_secret(
    httpserver, monkeypatch
):
    """An integrator saves the endpoint's form while an execution is sending (the form's
    instance was read before). The edit writes its own fields only: the running execution
    keeps its lease, so a "run now" pressed meanwhile still waits, and a secret rotated
    meanwhile is not written back."""
    from webhooks.services import endpoint_rotate_secret, endpoint_update

    endpoint, _secret = endpoint_create(
        data={"name": "CRM", "url": httpserver.url_for("/crm"), "orders_per_payload": 2}
    )
    # The signing secret changes mid-run, so this CRM does not check signatures.
    httpserver.expect_request("/crm", method="POST").respond_with_data("{}")
    create_orders(4)
    form_instance = Endpoint.objects.get(pk=endpoint.pk)  # the integrator opens the form
    real_post = sending.post_payload
    during: dict = {}

    def post_and_edit(**kwargs):
        if not during:
            rotated = endpoint_rotate_secret(endpoint=Endpoint.objects.get(pk=endpoint.pk))
            endpoint_update(endpoint=form_instance, data={"name": "Renamed", "max_attempts": 3})
            during["row"] = Endpoint.objects.get(pk=endpoint.pk)
            during["rotated"] = rotated
            during["second"] = services.execution_run(
                endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL
            )
        return real_post(**kwargs)

    monkeypatch.setattr(sending, "post_payload", post_and_edit)
    execution = run(endpoint)
    row = during["row"]
    assert (row.name, row.max_attempts) == ("Renamed", 3)
    assert row.lease_owner and row.lease_until  # still the running execution's
    assert during["second"] is None  # so a second execution did not start beside it
    assert row.signing_secret == during["rotated"]
    assert row.next_sync_at == endpoint.next_sync_at
    assert execution.orders_delivered == 4
    assert SyncRun.objects.filter(endpoint=endpoint).count() == 1
    after = Endpoint.objects.get(pk=endpoint.pk)
    assert (after.lease_owner, after.lease_until) == ("", None)  # released by its owner
    assert after.history.first().name == "Renamed"


def test_an_expired_lease_of_a_dead_worker_is_taken_over_and_its_run_closed(endpoint_and_crm):
    endpoint, _crm = endpoint_and_crm()
    create_orders(2)
    long_ago = timezone.now() - services.lease_length() - dt.timedelta(seconds=1)
    services.lease_acquire(endpoint_id=endpoint.pk, owner="dead", now=long_ago)
    dead = SyncRun.objects.create(endpoint=endpoint, trigger="SCHEDULE", started_at=long_ago)
    execution = run(endpoint)
    assert execution.orders_delivered == 2
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED and "stopped" in dead.note


def test_a_stalled_execution_taken_over_does_not_overwrite_the_verdict_on_it(
    endpoint_and_crm, monkeypatch
):
    """A worker stalls past its lease (a long GC pause, a frozen VM); the next execution
    takes the endpoint over and closes the stalled one as dead. When the stalled worker
    wakes it stops (its lease is gone), and its own close leaves that verdict standing."""
    endpoint, crm = endpoint_and_crm(orders_per_payload=2)
    create_orders(4)
    real_post = sending.post_payload

    def post_then_stall(**kwargs):
        result = real_post(**kwargs)
        if len(crm.bodies) == 1:  # meanwhile, the lease expired and another worker took over
            Endpoint.objects.filter(pk=endpoint.pk).update(
                lease_owner="successor", lease_until=timezone.now() + services.lease_length()
            )
            SyncRun.objects.filter(endpoint=endpoint, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                note="The worker stopped mid-execution.",
            )
        return result

    monkeypatch.setattr(sending, "post_payload", post_then_stall)
    stalled = run(endpoint)
    assert len(crm.bodies) == 1  # it sent nothing more once its lease was gone
    assert (stalled.status, stalled.note) == (RunStatus.FAILED, "The worker stopped mid-execution.")
    assert (stalled.orders_delivered, stalled.payloads) == (2, 1)  # what it did is kept
    assert pending(endpoint) == 2
    assert Endpoint.objects.get(pk=endpoint.pk).lease_owner == "successor"


def test_a_crash_mid_execution_loses_nothing(endpoint_and_crm, monkeypatch):
    endpoint, crm = endpoint_and_crm(orders_per_payload=2)
    create_orders(5)
    real_post = sending.post_payload
    calls = []

    def crash_on_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real_post(**kwargs)

    monkeypatch.setattr(sending, "post_payload", crash_on_second)
    with pytest.raises(SystemExit):
        services.execution_run(endpoint_id=endpoint.pk)
    assert pending(endpoint) == 3  # only the acknowledged payload left the outbox
    monkeypatch.setattr(sending, "post_payload", real_post)
    run(endpoint)
    assert pending(endpoint) == 0
    assert len({o["orderDetailsData"]["orderId"] for o in crm.orders}) == 5


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_executions_of_one_endpoint_at_once_one_proceeds(endpoint_and_crm, httpserver):
    endpoint, crm = endpoint_and_crm()
    create_orders(3)
    real_handle = crm._handle

    def slow(request):
        time.sleep(0.5)
        return real_handle(request)

    httpserver.clear()
    httpserver.expect_request("/crm/webhook", method="POST").respond_with_handler(slow)
    barrier = threading.Barrier(4)
    results = []

    def go():
        barrier.wait()
        try:
            results.append(services.execution_run(endpoint_id=endpoint.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    assert len(crm.bodies) == 1
    assert pending(endpoint) == 0


# --- priority, dispatcher ----------------------------------------------------------------------


def test_day_to_day_changes_are_claimed_before_an_import_backlog(endpoint_and_crm):
    backlog = create_orders(5)  # older orders, from before the endpoint existed
    endpoint, crm = endpoint_and_crm(max_orders_per_run=3)
    outbox.outbox_record(
        orders=[
            outbox.ChangedOrder(
                o["order_id"], 1, o["order_type"], o["order_state"], o["sales_channel_code"]
            )
            for o in backlog
        ],
        reason=SyncReason.INITIAL_IMPORT,
        endpoints=[endpoint],
    )
    fresh = create_orders(2)
    run(endpoint)
    # The cap of 3 takes both changes first; the backlog fills what is left.
    reasons = {o["orderDetailsData"]["orderId"]: o["syncReason"] for o in crm.orders}
    assert len(reasons) == 3
    assert {reasons.get(o["order_id"]) for o in fresh} == {"CHANGE"}
    assert sorted(reasons.values()) == ["CHANGE", "CHANGE", "INITIAL_IMPORT"]


def test_the_dispatcher_claims_each_due_endpoint_once(db, monkeypatch):
    due, _ = endpoint_create(data={"name": "due", "url": "http://127.0.0.1:9/a"})
    _paused, _ = endpoint_create(
        data={"name": "p", "url": "http://127.0.0.1:9/b", "is_active": False}
    )
    later, _ = endpoint_create(data={"name": "later", "url": "http://127.0.0.1:9/c"})
    Endpoint.objects.filter(pk=later.pk).update(
        next_sync_at=timezone.now() + dt.timedelta(minutes=5)
    )
    from sync import tasks

    queued = []
    monkeypatch.setattr(tasks.run_endpoint, "delay", lambda *args: queued.append(args))
    assert tasks.dispatch_due_endpoints() == 1
    assert queued == [(due.pk, "SCHEDULE")]
    assert tasks.dispatch_due_endpoints() == 0  # a second beat, or an overlapping tick
    due.refresh_from_db()
    assert timezone.now() + dt.timedelta(minutes=14) < due.next_sync_at
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        assert tasks.dispatch_due_endpoints() == 2  # due and later


def test_an_endpoint_whose_execution_died_is_due_once_its_lease_expires(db):
    """A worker killed mid-execution leaves its lease behind; once it expires the endpoint
    is due at the next tick, not a whole frequency later."""
    endpoint, _ = endpoint_create(
        data={"name": "e", "url": "http://127.0.0.1:9/a", "frequency_minutes": 1440}
    )
    assert services.endpoints_claim_due() == [endpoint.pk]
    assert services.lease_acquire(endpoint_id=endpoint.pk, owner="dead", now=timezone.now())
    assert services.endpoints_claim_due() == []  # the lease is still valid: it may be alive
    later = timezone.now() + services.lease_length() + dt.timedelta(seconds=1)
    with time_machine.travel(later):
        assert services.endpoints_claim_due() == [endpoint.pk]
        assert services.endpoints_claim_due() == []  # claimed once, by one beat
    services.lease_release(endpoint_id=endpoint.pk, owner="dead")
    with time_machine.travel(later + dt.timedelta(minutes=5)):
        assert services.endpoints_claim_due() == []  # a released lease is no reason to run


def test_a_tick_that_falls_while_an_execution_runs_is_claimed_once_it_ends(db):
    """A long execution outlasts the endpoint's frequency: the tick due meanwhile is not
    spent on a task that would find the lease held (and the orders changed meanwhile would
    then wait a whole frequency); it is claimed at the first dispatcher tick after."""
    endpoint, _ = endpoint_create(
        data={"name": "e", "url": "http://127.0.0.1:9/a", "frequency_minutes": 15}
    )
    assert services.endpoints_claim_due() == [endpoint.pk]  # the execution starts...
    assert services.lease_acquire(endpoint_id=endpoint.pk, owner="long", now=timezone.now())
    due = timezone.now() + dt.timedelta(minutes=15, seconds=1)
    with time_machine.travel(due):
        services.lease_renew(endpoint_id=endpoint.pk, owner="long")  # ...and is still running
        assert services.endpoints_claim_due() == []
        services.lease_release(endpoint_id=endpoint.pk, owner="long")
    with time_machine.travel(due + dt.timedelta(minutes=1)):  # the next dispatcher tick
        assert services.endpoints_claim_due() == [endpoint.pk]
        assert services.endpoints_claim_due() == []


def test_a_frequency_change_applies_from_the_next_tick(db):
    from webhooks.services import endpoint_update

    endpoint, _ = endpoint_create(
        data={"name": "e", "url": "http://127.0.0.1:9/a", "frequency_minutes": 1440}
    )
    services.endpoints_claim_due()
    endpoint.refresh_from_db()
    endpoint_update(endpoint=endpoint, data={"frequency_minutes": 5})
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=6)):
        assert services.endpoints_claim_due() == [endpoint.pk]


def test_the_dispatcher_schedule_exists_after_migrate(db):
    """The data migration creates the every-minute periodic task (run again on a clean slate,
    since a reused test database may have lost the row to an earlier transactional test)."""
    from importlib import import_module

    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(task="sync.tasks.dispatch_due_endpoints").delete()
    import_module("sync.migrations.0002_dispatcher_schedule").create_schedule(apps, None)
    task = PeriodicTask.objects.get(task="sync.tasks.dispatch_due_endpoints")
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "minutes")


# --- cost ------------------------------------------------------------------------------------


def test_the_queries_of_an_execution_are_bounded_per_payload_not_per_order(endpoint_and_crm):
    endpoint, crm = endpoint_and_crm(orders_per_payload=50)

    def queries_for(count: int) -> int:
        orders_bulk_upsert(orders=orders_data(count))
        with CaptureQueriesContext(connection) as queries:
            execution = run(endpoint)
        assert execution.orders_delivered == count
        return len(queries)

    one_small_payload = queries_for(3)
    one_full_payload = queries_for(50)
    two_payloads = queries_for(100)
    assert one_full_payload == one_small_payload
    per_payload = two_payloads - one_full_payload
    assert 0 < per_payload <= 8
    assert json.dumps(crm.bodies[-1])  # the CRM got real payloads


def test_rotate_field_key_reencrypts_secrets_under_the_new_key(db, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from webhooks import crypto

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    crypto._fernet.cache_clear()
    try:
        endpoint, secret = endpoint_create(
            data={
                "name": "e",
                "url": "http://127.0.0.1:9/a",
                "auth_type": AuthType.BEARER,
                "auth_secret": "tok",
            }
        )
        settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
        crypto._fernet.cache_clear()
        call_command("rotate_field_key", stdout=io.StringIO())
        settings.FIELD_ENCRYPTION_KEY = new  # the old key is gone now
        crypto._fernet.cache_clear()
        endpoint.refresh_from_db()
        assert (endpoint.signing_secret, endpoint.auth_secret) == (secret, "tok")
        assert secret not in endpoint.signing_secret_encrypted
    finally:
        crypto._fernet.cache_clear()


def test_a_scheduled_tick_with_nothing_due_leaves_no_execution_behind(endpoint_and_crm):
    endpoint, _ = endpoint_and_crm()
    assert services.execution_run(endpoint_id=endpoint.pk) is None
    assert not SyncRun.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.last_run_at is not None
    create_orders(1)
    assert services.execution_run(endpoint_id=endpoint.pk).orders_delivered == 1


def test_the_delivery_log_is_pruned_past_its_retention_and_pending_orders_stay(endpoint_and_crm):
    from django.core.management import call_command

    endpoint, crm = endpoint_and_crm(orders_per_payload=1)
    create_orders(2)
    old = run(endpoint)
    create_orders(1)
    crm.answers = [Response("down", status=500)]
    with time_machine.travel(timezone.now() + dt.timedelta(days=40)):
        recent = run(endpoint)
        out = io.StringIO()
        call_command("prune_deliveries", "--days", "30", stdout=out)
    assert "Deleted 2 deliveries" in out.getvalue()
    assert not SyncRun.objects.filter(pk=old.pk).exists()
    assert SyncRun.objects.filter(pk=recent.pk).exists()
    assert Delivery.objects.filter(run=recent).count() == 1
    assert pending(endpoint) == 1  # the failed order is still owed to the CRM


def test_json_logs_carry_the_execution_and_delivery_ids(endpoint_and_crm, caplog):
    import json as json_lib
    import logging

    from config.logs import JsonFormatter

    endpoint, crm = endpoint_and_crm()
    create_orders(2)
    with caplog.at_level(logging.INFO, logger="sync.services"):
        execution = run(endpoint)
    lines = [json_lib.loads(JsonFormatter().format(r)) for r in caplog.records]
    delivery = next(line for line in lines if "delivery_id" in line)
    summary = next(line for line in lines if "orders_delivered" in line)
    assert delivery["run_id"] == execution.pk == summary["run_id"]
    assert delivery["delivery_id"] == crm.bodies[0]["id"]
    assert (delivery["status_code"], summary["orders_delivered"]) == (200, 2)
    assert summary["level"] == "INFO" and summary["logger"] == "sync.services"
