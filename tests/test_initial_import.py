"""Initial imports: flag older orders for an endpoint, drain them after day-to-day changes."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orders.services import order_upsert, orders_bulk_upsert
from sync import imports, services
from sync.models import InitialImport, PendingOrder, RunTrigger, SyncReason
from tests.factories import orders_data
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def old_orders(count: int, start: dt.datetime = T0, step: dt.timedelta = dt.timedelta(hours=1)):
    """Orders created at start, start + step, …, stored before any endpoint exists."""
    data = orders_data(count, ticket_lines=0)
    for i, order in enumerate(data):
        order["creation_date_time"] = start + i * step
    orders_bulk_upsert(orders=data)
    return data


@pytest.fixture
def endpoint(db) -> Endpoint:
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    return endpoint


def flag(endpoint: Endpoint, start: dt.datetime, end: dt.datetime, **filters) -> InitialImport:
    return imports.initial_import_create(
        endpoint=endpoint, created_from=start, created_to=end, **filters
    )


# --- flagging ----------------------------------------------------------------------------


def test_flags_exactly_the_orders_created_in_the_half_open_timeframe():
    data = old_orders(10)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    record = flag(endpoint, data[2]["creation_date_time"], data[7]["creation_date_time"])
    rows = PendingOrder.objects.filter(endpoint=endpoint)
    assert {r.order_id for r in rows} == {o["order_id"] for o in data[2:7]}
    assert {(r.reason, r.priority, r.initial_import_id) for r in rows} == {
        (SyncReason.INITIAL_IMPORT, 1, record.pk)
    }
    assert (record.flagged, record.queued) == (5, 5)


def test_filters_narrow_the_import_and_the_endpoints_own_filters_apply():
    data = old_orders(30)
    endpoint, _ = endpoint_create(
        data={"name": "CRM", "url": "http://127.0.0.1:9/h", "filter_sales_channels": ["WEB", "BOX"]}
    )
    record = flag(endpoint, T0, T0 + 2 * DAY, sales_channels=["WEB"])
    expected = {o["order_id"] for o in data if o["sales_channel_code"] == "WEB"}
    assert {r.order_id for r in PendingOrder.objects.filter(endpoint=endpoint)} == expected
    assert record.flagged == len(expected)


def test_an_order_already_pending_keeps_one_row_and_its_day_to_day_priority(endpoint):
    (changed,) = orders_data(1)
    changed["creation_date_time"] = T0
    order_upsert(data=changed)  # a day-to-day change for the endpoint
    flag(endpoint, T0 - DAY, T0 + DAY)
    (row,) = PendingOrder.objects.filter(endpoint=endpoint)
    assert (row.reason, row.priority) == (SyncReason.CHANGE, 0)


def test_overlapping_imports_are_allowed_and_send_each_order_once():
    data = old_orders(10)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    first = flag(endpoint, data[0]["creation_date_time"], data[6]["creation_date_time"])
    second = flag(endpoint, data[4]["creation_date_time"], data[10 - 1]["creation_date_time"])
    assert PendingOrder.objects.filter(endpoint=endpoint).count() == 9
    assert (first.flagged, first.queued) == (6, 6)
    assert (second.flagged, second.queued) == (5, 3)  # two were queued by the first


@pytest.mark.parametrize(
    "start, end, message",
    [
        (T0 + DAY, T0, "after createdFrom"),
        (T0, T0, "after createdFrom"),
        (T0 + 100 * DAY, T0 + 101 * DAY, "nothing was flagged"),
    ],
)
def test_bad_timeframes_are_refused_and_flag_nothing(start, end, message):
    old_orders(5)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    with pytest.raises(ValidationError, match=message):
        flag(endpoint, start, end)
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_an_inactive_endpoint_is_refused():
    old_orders(3)
    endpoint, _ = endpoint_create(
        data={"name": "CRM", "url": "http://127.0.0.1:9/hook", "is_active": False}
    )
    with pytest.raises(ValidationError, match="paused or disabled"):
        flag(endpoint, T0, T0 + DAY)


def test_flagging_runs_a_constant_number_of_queries_whatever_the_size():
    old_orders(400, step=dt.timedelta(minutes=1))
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})

    def queries(start, end) -> int:
        with CaptureQueriesContext(connection) as captured:
            flag(endpoint, start, end)
        return len(captured)

    assert queries(T0, T0 + dt.timedelta(minutes=5)) == queries(
        T0 + dt.timedelta(minutes=5), T0 + DAY
    )


# --- progress, cancel -------------------------------------------------------------------


def test_progress_counts_delivered_pending_parked_and_gives_an_eta():
    data = old_orders(10)
    endpoint, _ = endpoint_create(
        data={
            "name": "CRM",
            "url": "http://127.0.0.1:9/h",
            "max_orders_per_run": 3,
            "frequency_minutes": 15,
        }
    )
    record = flag(endpoint, T0, T0 + DAY)
    PendingOrder.objects.filter(order_id__in=[o["order_id"] for o in data[:4]]).delete()  # acked
    PendingOrder.objects.filter(order_id=data[4]["order_id"]).update(parked_at=timezone.now())
    progress = imports.initial_import_progress(record)
    assert (progress.flagged, progress.delivered, progress.pending, progress.parked) == (
        10,
        4,
        5,
        1,
    )
    assert progress.state == "in progress"
    # 5 pending at 3 per execution: 2 executions, the second 15 minutes after the first
    assert timezone.now() + dt.timedelta(minutes=14) < progress.eta
    assert progress.eta < timezone.now() + dt.timedelta(minutes=16)
    PendingOrder.objects.filter(parked_at__isnull=True).delete()
    assert imports.initial_import_progress(record).state == "done, some parked"


def test_cancel_removes_what_is_not_yet_sent_and_keeps_real_changes(endpoint):
    data = old_orders(6)
    endpoint, _ = endpoint_create(data={"name": "CRM 2", "url": "http://127.0.0.1:9/h"})
    record = flag(endpoint, T0, T0 + DAY)
    PendingOrder.objects.filter(endpoint=endpoint, order_id=data[0]["order_id"]).delete()  # sent
    order_upsert(data={**data[1], "order_state": "EXPIRED", "last_mod_date_time": None})
    removed = imports.initial_import_cancel(initial_import=record)
    assert removed == 4
    remaining = PendingOrder.objects.filter(endpoint=endpoint)
    assert [(r.order_id, r.reason) for r in remaining] == [(data[1]["order_id"], "CHANGE")]
    progress = imports.initial_import_progress(record)
    assert (progress.state, progress.removed, progress.delivered) == ("cancelled", 4, 1)
    assert imports.initial_import_cancel(initial_import=record) == 0  # twice is harmless


# --- the backlog drains through executions ----------------------------------------------


def test_ten_thousand_flagged_orders_drain_with_the_caps_held_and_changes_first(
    httpserver: HTTPServer,
):
    backlog = orders_data(10_000, ticket_lines=0)
    for i, order in enumerate(backlog):
        order["creation_date_time"] = T0 + i * dt.timedelta(seconds=30)
    orders_bulk_upsert(orders=backlog)
    payload_sizes: list[int] = []
    received: dict[int, str] = {}

    def crm(request: Request) -> Response:
        import json

        body = json.loads(request.get_data())
        payload_sizes.append(len(body["orders"]))
        for entry in body["orders"]:
            received.setdefault(entry["orderDetailsData"]["orderId"], entry["syncReason"])
        return Response("{}", status=200)

    httpserver.expect_request("/crm", method="POST").respond_with_handler(crm)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": httpserver.url_for("/crm")})
    record = flag(endpoint, T0, T0 + 10 * DAY)
    assert record.flagged == 10_000

    executions = 0
    while PendingOrder.objects.filter(endpoint=endpoint).exists():
        # a few day-to-day changes arrive between executions: they must go in the next one
        fresh = orders_data(7, ticket_lines=0)
        orders_bulk_upsert(orders=fresh)
        before = len(payload_sizes)
        run = services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
        executions += 1
        assert run.orders_delivered <= 500
        assert all(size <= 50 for size in payload_sizes[before:])
        assert all(received[o["order_id"]] == "CHANGE" for o in fresh)
        assert executions <= 25
    assert executions == 21  # (10,000 + 21 x 7) / 500, rounded up
    assert {received[o["order_id"]] for o in backlog} == {"INITIAL_IMPORT"}
    progress = imports.initial_import_progress(record)
    assert (progress.delivered, progress.pending, progress.state) == (10_000, 0, "done")


# --- API -------------------------------------------------------------------------------


def test_api_flags_a_timeframe_and_reports_progress(api):
    data = old_orders(8)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    url = f"/api/v1/endpoints/{endpoint.pk}/initial-imports/"
    body = {"createdFrom": "2026-01-01", "createdTo": "2026-01-01T05:00:00+00:00"}
    preview = api.post(f"{url}?dryRun=true", body, format="json")
    assert preview.status_code == 200
    assert preview.json()["orders"] == 5
    assert not PendingOrder.objects.exists()
    response = api.post(url, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["flagged"], created["pending"], created["delivered"]) == (5, 5, 0)
    PendingOrder.objects.filter(order_id=data[0]["order_id"]).delete()
    progress = api.get(f"/api/v1/initial-imports/{created['id']}/").json()
    assert (progress["delivered"], progress["pending"], progress["parked"]) == (1, 4, 0)
    assert progress["eta"] is not None
    assert progress["state"] == "in progress"
    cancelled = api.post(f"/api/v1/initial-imports/{created['id']}/cancel/").json()
    assert (cancelled["state"], cancelled["pending"], cancelled["removed"]) == ("cancelled", 0, 4)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"createdFrom": "2026-02-01", "createdTo": "2026-01-01"}, "createdTo"),
        ({"createdFrom": "yesterday", "createdTo": "2026-01-01"}, "createdFrom"),
        ({"createdTo": "2026-01-01"}, "createdFrom"),
        ({"createdFrom": "2030-01-01", "createdTo": "2030-02-01"}, "createdFrom"),
        (
            {"createdFrom": "2026-01-01", "createdTo": "2026-02-01", "filterOrderTypes": ["GIFT"]},
            "filterOrderTypes",
        ),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field_and_flags_nothing(api, body, field):
    old_orders(3)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    response = api.post(f"/api/v1/endpoints/{endpoint.pk}/initial-imports/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not PendingOrder.objects.exists()


def test_api_unknown_or_inactive_endpoint(api):
    old_orders(3)
    body = {"createdFrom": "2026-01-01", "createdTo": "2026-02-01"}
    assert (
        api.post("/api/v1/endpoints/999/initial-imports/", body, format="json").status_code == 404
    )
    endpoint, _ = endpoint_create(
        data={"name": "CRM", "url": "http://127.0.0.1:9/h", "is_active": False}
    )
    response = api.post(f"/api/v1/endpoints/{endpoint.pk}/initial-imports/", body, format="json")
    assert response.status_code == 400
    assert "endpoint" in response.json()


# --- command ---------------------------------------------------------------------------


def test_flag_initial_import_command():
    old_orders(6)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    out = io.StringIO()
    call_command(
        "flag_initial_import",
        endpoint=endpoint.pk,
        start="2026-01-01",
        end="2026-01-01T03:00",
        dry_run=True,
        stdout=out,
    )
    assert "3 orders would be flagged" in out.getvalue()
    assert not PendingOrder.objects.exists()
    call_command(
        "flag_initial_import",
        "--endpoint",
        str(endpoint.pk),
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
        stdout=out,
    )
    assert "6 orders flagged" in out.getvalue()
    with pytest.raises(CommandError, match="not a date"):
        call_command("flag_initial_import", endpoint=endpoint.pk, start="soon", end="2026-01-02")
    with pytest.raises(CommandError, match="nothing was flagged"):
        call_command(
            "flag_initial_import", endpoint=endpoint.pk, start="2030-01-01", end="2030-01-02"
        )
    with pytest.raises(CommandError, match="No endpoint"):
        call_command("flag_initial_import", endpoint=999, start="2026-01-01", end="2026-01-02")


# --- found by fuzzing -----------------------------------------------------------------------


def test_the_imports_list_filters_by_endpoint_and_refuses_a_bad_id(api, endpoint):
    """`?endpoint=` with 40 digits was a 500 (overflow); other bad ids were silently ignored."""
    other, _ = endpoint_create(data={"name": "Other", "url": "http://127.0.0.1:9/other"})
    old_orders(2)
    flag(endpoint, T0, T0 + DAY)
    flag(other, T0, T0 + DAY)
    listed = api.get("/api/v1/initial-imports/", {"endpoint": endpoint.pk}).json()
    assert [i["endpoint"] for i in listed] == [endpoint.pk]
    for bad in ("9" * 40, "x", "1.5"):
        response = api.get("/api/v1/initial-imports/", {"endpoint": bad})
        assert response.status_code == 400
        assert "endpoint" in response.json()
