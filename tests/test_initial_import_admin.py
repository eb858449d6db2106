"""The initial-import admin: the flag page (preview, then confirm), the progress page and the
changelist, the cancel button, and the order changelist's "flag for initial import" action."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, OrderState, OrderType
from orders.services import order_upsert, orders_bulk_upsert
from sync import imports
from sync.models import InitialImport, PendingOrder, SyncReason
from tests.factories import order_data
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db

ADD = "/admin/sync/initialimport/add/"
CHANGELIST = "/admin/sync/initialimport/"
ORDERS = "/admin/orders/order/"
FROM = dt.datetime(2025, 3, 10, 8, 0, 0, tzinfo=dt.UTC)
TO = dt.datetime(2025, 3, 12, 18, 30, 0, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)


def progress_url(pk: int) -> str:
    return f"{CHANGELIST}{pk}/change/"


def cancel_url(pk: int) -> str:
    return f"{CHANGELIST}{pk}/cancel/"


def store_at(*times: dt.datetime, **overrides) -> list[int]:
    """Store one order created at each time (before any endpoint exists); return their ids."""
    data = [order_data(creation_date_time=t, **overrides) for t in times]
    orders_bulk_upsert(orders=data)
    return [o["order_id"] for o in data]


def make_endpoint(name: str = "CRM", **fields) -> Endpoint:
    endpoint, _ = endpoint_create(data={"name": name, "url": "http://127.0.0.1:9/x", **fields})
    return endpoint


def form(endpoint: Endpoint, start: dt.datetime = FROM, end: dt.datetime = TO, **extra) -> dict:
    """What the flag form posts for [start, end) (split date and time widgets)."""
    return {
        "endpoint": str(endpoint.pk),
        "created_from_0": f"{start:%Y-%m-%d}",
        "created_from_1": f"{start:%H:%M:%S}",
        "created_to_0": f"{end:%Y-%m-%d}",
        "created_to_1": f"{end:%H:%M:%S}",
        "sales_channels": "",
        **extra,
    }


def flagged_ids(**filters) -> set[int]:
    return set(PendingOrder.objects.filter(**filters).values_list("order_id", flat=True))


def cell(response, element_id: str) -> int:
    """The integer in the progress page's cell with this id."""
    match = re.search(rf'id="{element_id}">\s*(\d+)\s*<', response.content.decode())
    assert match, f"no #{element_id} on the page"
    return int(match.group(1))


@pytest.fixture
def timeframe() -> dict[str, list[int]]:
    """Orders around [FROM, TO): inside (both edges included) and outside (TO excluded)."""
    inside = store_at(FROM, FROM + MS, TO - dt.timedelta(seconds=1), TO - MS)
    outside = store_at(FROM - MS, FROM - dt.timedelta(days=1), TO, TO + dt.timedelta(hours=1))
    return {"inside": inside, "outside": outside}


# --- The flag page: form, preview, confirm ---------------------------------------------------


def test_add_page_renders_the_form(admin_client_logged):
    """The add page shows the flag form with the endpoint, split dates and filters, and a
    Preview button but no Confirm yet."""
    endpoint = make_endpoint("Visible CRM")
    response = admin_client_logged.get(ADD)
    assert response.status_code == 200
    html = response.content.decode()
    for name in (
        "endpoint",
        "created_from_0",
        "created_from_1",
        "created_to_0",
        "created_to_1",
        "order_types",
        "order_states",
        "sales_channels",
    ):
        assert f'name="{name}"' in html, name
    assert f'<option value="{endpoint.pk}">' in html
    assert 'name="_preview"' in html
    assert 'name="_confirm"' not in html


def test_preview_counts_the_half_open_timeframe_and_flags_nothing(admin_client_logged, timeframe):
    """Preview shows the exact count of [from, to) with an ETA and a Confirm button; it
    creates no import and no outbox row."""
    endpoint = make_endpoint()
    response = admin_client_logged.post(ADD, {**form(endpoint), "_preview": "Preview"})
    assert response.status_code == 200
    estimate = response.context["estimate"]
    assert estimate is not None
    assert estimate.orders == len(timeframe["inside"]) == 4
    assert estimate.eta is not None
    html = response.content.decode()
    assert 'id="import-preview"' in html
    assert "<strong>4</strong> orders will be flagged" in html
    assert f"done about {estimate.eta:%Y-%m-%d %H:%M} UTC" in html
    assert 'name="_confirm"' in html
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_preview_eta_follows_the_cap_and_the_frequency(admin_client_logged):
    """5 orders at 2 per execution every 10 minutes: 3 executions, the last 20 minutes after
    the next scheduled one."""
    store_at(*(FROM + dt.timedelta(minutes=i) for i in range(5)))
    endpoint = make_endpoint(max_orders_per_run=2, frequency_minutes=10)
    next_sync = (timezone.now() + dt.timedelta(minutes=7)).replace(microsecond=0)
    Endpoint.objects.filter(pk=endpoint.pk).update(next_sync_at=next_sync)
    response = admin_client_logged.post(ADD, {**form(endpoint), "_preview": "Preview"})
    estimate = response.context["estimate"]
    assert (estimate.orders, estimate.backlog, estimate.executions) == (5, 0, 3)
    assert estimate.eta == next_sync + dt.timedelta(minutes=20)
    assert "3 executions" in response.content.decode()


def test_preview_applies_the_optional_filters(admin_client_logged):
    """Order type, state and channel filters narrow the preview count."""
    kept = store_at(FROM, FROM + MS, order_type=OrderType.SALE, order_state=OrderState.CLOSED)
    store_at(FROM + 2 * MS, order_type=OrderType.RESERVATION, order_state=OrderState.CLOSED)
    store_at(FROM + 3 * MS, order_type=OrderType.SALE, order_state=OrderState.CANCELLED)
    channel = Order.objects.get(pk=kept[0]).sales_channel_code
    endpoint = make_endpoint()
    data = form(endpoint, order_types=["SALE"], order_states=["CLOSED"])
    response = admin_client_logged.post(ADD, {**data, "_preview": "Preview"})
    assert response.context["estimate"].orders == 2
    data["sales_channels"] = f" {channel} , "
    response = admin_client_logged.post(ADD, {**data, "_preview": "Preview"})
    expected = Order.objects.filter(pk__in=kept, sales_channel_code=channel).count()
    assert response.context["estimate"].orders == expected


def test_confirm_flags_exactly_the_timeframe_and_redirects_to_progress(
    admin_client_logged, timeframe
):
    """Confirm creates the import, flags exactly the orders of [from, to) as INITIAL_IMPORT
    rows (priority 1) carrying the import, and redirects to its progress page."""
    endpoint = make_endpoint()
    response = admin_client_logged.post(ADD, {**form(endpoint), "_confirm": "Confirm"})
    record = InitialImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == progress_url(record.pk)
    assert record.endpoint == endpoint
    assert (record.created_from, record.created_to) == (FROM, TO)
    assert record.flagged == record.queued == 4
    assert record.requested_by.username == "admin"
    rows = PendingOrder.objects.filter(endpoint=endpoint)
    assert {r.order_id for r in rows} == set(timeframe["inside"])
    assert {(r.reason, r.priority, r.initial_import_id) for r in rows} == {
        (SyncReason.INITIAL_IMPORT, 1, record.pk)
    }
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "4 orders flagged for CRM." in messages


def test_confirm_with_filters_flags_only_the_matching_orders(admin_client_logged):
    """Confirm with type/state filters flags only the matching orders and records the filters
    on the import."""
    kept = store_at(FROM, TO - MS, order_type=OrderType.SALE, order_state=OrderState.CLOSED)
    store_at(FROM + MS, order_type=OrderType.RESERVATION, order_state=OrderState.CLOSED)
    store_at(FROM + 2 * MS, order_type=OrderType.SALE, order_state=OrderState.CANCELLED)
    endpoint = make_endpoint()
    data = form(endpoint, order_types=["SALE"], order_states=["CLOSED"])
    response = admin_client_logged.post(ADD, {**data, "_confirm": "Confirm"})
    assert response.status_code == 302
    record = InitialImport.objects.get()
    assert (record.filter_order_types, record.filter_order_states) == (["SALE"], ["CLOSED"])
    assert record.filter_sales_channels == []
    assert flagged_ids(initial_import=record) == flagged_ids() == set(kept)


def test_confirm_then_progress_page_renders(admin_client_logged, timeframe):
    """Following the confirm's redirect lands on the progress page of the new import."""
    endpoint = make_endpoint()
    response = admin_client_logged.post(ADD, {**form(endpoint), "_confirm": "Confirm"}, follow=True)
    assert response.status_code == 200
    assert response.context["progress"].pending == 4
    assert '<progress id="import-progress"' in response.content.decode()


# --- Bad input: form errors, nothing flagged --------------------------------------------------


@pytest.mark.parametrize("button", ["_preview", "_confirm"])
@pytest.mark.parametrize(
    ("start", "end"),
    [(TO, FROM), (FROM, FROM)],
    ids=["from-after-to", "from-equals-to"],
)
def test_from_not_before_to_is_a_form_error(admin_client_logged, timeframe, button, start, end):
    """from ≥ to: an error on "created before", no preview, nothing flagged."""
    endpoint = make_endpoint()
    response = admin_client_logged.post(ADD, {**form(endpoint, start, end), button: "x"})
    assert response.status_code == 200
    assert response.context["form"].errors["created_to"] == ["Must be after “created from”."]
    assert response.context["estimate"] is None
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


@pytest.mark.parametrize("button", ["_preview", "_confirm"])
@pytest.mark.parametrize(
    ("field", "value"),
    [("created_from_0", "2025-13-45"), ("created_to_1", "25:61:00"), ("created_from_0", "")],
    ids=["bad-date", "bad-time", "missing-date"],
)
def test_unparseable_date_is_a_form_error(admin_client_logged, timeframe, button, field, value):
    """An unparseable or missing date/time is a field error; nothing is flagged."""
    endpoint = make_endpoint()
    response = admin_client_logged.post(ADD, {**form(endpoint), field: value, button: "x"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors.get(field.rsplit("_", 1)[0])
    assert 'class="errorlist' in response.content.decode()
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_empty_timeframe_preview_says_so(admin_client_logged, timeframe):
    """A timeframe with no order: "No order was created in that timeframe", no Confirm."""
    endpoint = make_endpoint()
    start, end = TO + dt.timedelta(days=1), TO + dt.timedelta(days=2)
    response = admin_client_logged.post(ADD, {**form(endpoint, start, end), "_preview": "x"})
    assert response.status_code == 200
    assert response.context["estimate"] is None
    html = response.content.decode()
    assert "No order was created in that timeframe" in html
    assert 'name="_confirm"' not in html
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_empty_timeframe_confirm_is_refused(admin_client_logged, timeframe):
    """Confirming an empty timeframe (e.g. a stale preview) shows an error and leaves neither
    an import nor an outbox row."""
    endpoint = make_endpoint()
    start, end = TO + dt.timedelta(days=1), TO + dt.timedelta(days=2)
    response = admin_client_logged.post(ADD, {**form(endpoint, start, end), "_confirm": "x"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "nothing was flagged" in response.content.decode()
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_paused_endpoint_is_not_selectable(admin_client_logged, timeframe):
    """A paused endpoint is not offered, and posting its id is a field error; nothing flagged."""
    active = make_endpoint("Active CRM")
    paused = make_endpoint("Paused CRM", is_active=False)
    html = admin_client_logged.get(ADD).content.decode()
    assert f'<option value="{active.pk}">' in html
    assert f'<option value="{paused.pk}">' not in html
    for button in ("_preview", "_confirm"):
        response = admin_client_logged.post(ADD, {**form(paused), button: "x"})
        assert response.status_code == 200
        assert "endpoint" in response.context["form"].errors
        assert response.context["estimate"] is None
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


# --- Progress page and changelist -------------------------------------------------------------


@pytest.fixture
def flagged(timeframe) -> InitialImport:
    """An import of the 4 orders of [FROM, TO) for a fresh endpoint."""
    endpoint = make_endpoint()
    return imports.initial_import_create(endpoint=endpoint, created_from=FROM, created_to=TO)


def test_progress_page_shows_counts_and_a_progress_bar(admin_client_logged, flagged):
    """The progress page shows flagged, delivered, pending and parked with a <progress>."""
    response = admin_client_logged.get(progress_url(flagged.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<progress id="import-progress" max="100" value="0"', html)
    assert "Flagged (matched)</th><td>4<" in html
    assert (cell(response, "import-delivered"), cell(response, "import-pending")) == (0, 4)
    assert "Parked</th><td>0<" in html
    assert response.context["progress"].state == "in progress"
    assert "Estimated end" in html and response.context["progress"].eta is not None


def test_progress_page_delivered_goes_up_after_acks(admin_client_logged, flagged):
    """Deleting outbox rows (as an ack does) raises delivered and the bar; parking one shows
    it as parked; all gone is "done"."""
    rows = list(PendingOrder.objects.filter(initial_import=flagged).order_by("order_id"))
    PendingOrder.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).delete()
    PendingOrder.objects.filter(pk=rows[2].pk).update(parked_at=timezone.now())
    response = admin_client_logged.get(progress_url(flagged.pk))
    assert cell(response, "import-delivered") == 2
    assert cell(response, "import-pending") == 1
    html = response.content.decode()
    assert re.search(r"Parked</th><td>1 — <a href=", html)
    assert '<progress id="import-progress" max="100" value="75"' in html

    PendingOrder.objects.filter(pk__in=[rows[2].pk, rows[3].pk]).delete()
    response = admin_client_logged.get(progress_url(flagged.pk))
    assert cell(response, "import-delivered") == 4
    assert cell(response, "import-pending") == 0
    assert response.context["progress"].state == "done"
    assert '<progress id="import-progress" max="100" value="100"' in response.content.decode()


def test_progress_page_tracks_a_pending_change_and_says_what_an_earlier_import_tracks(
    admin_client_logged,
):
    """An order already pending as a CHANGE is tracked by the import (it goes out either way,
    as the change it is); orders an earlier import tracks are named as such."""
    store_at(FROM, FROM + MS)
    endpoint = make_endpoint()
    (already,) = store_at(FROM + 2 * MS)  # pending as CHANGE for the endpoint
    first = imports.initial_import_create(endpoint=endpoint, created_from=FROM, created_to=TO)
    assert PendingOrder.objects.get(order_id=already).reason == SyncReason.CHANGE
    assert (first.flagged, first.queued) == (3, 3)
    second = imports.initial_import_create(endpoint=endpoint, created_from=FROM, created_to=TO)
    response = admin_client_logged.get(progress_url(second.pk))
    progress = response.context["progress"]
    assert (progress.flagged, progress.queued) == (3, 0)
    assert "(the rest was already tracked by an earlier import)" in response.content.decode()


def test_progress_page_of_unknown_import_is_404(admin_client_logged):
    """An unknown import id is a 404."""
    assert admin_client_logged.get(progress_url(999_999)).status_code == 404


def test_progress_page_of_non_numeric_id_is_404(admin_client_logged):
    """A non-numeric id in the progress URL is a 404 (or the admin's redirect), not a crash."""
    response = admin_client_logged.get(progress_url("abc"))  # type: ignore[arg-type]
    assert response.status_code in (302, 404)


def test_changelist_shows_a_progress_bar_per_import(admin_client_logged, flagged):
    """Each import on the changelist has its own bar with its delivered/pending counts."""
    endpoint = make_endpoint("Second CRM")
    second = imports.initial_import_create(endpoint=endpoint, created_from=FROM, created_to=TO)
    PendingOrder.objects.filter(initial_import=second).first().delete()
    response = admin_client_logged.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<progress max="100"') == 2
    assert '<progress max="100" value="0" style="width:10em"></progress> 0%' in html
    assert '<progress max="100" value="25" style="width:10em"></progress> 25%' in html
    assert "(0 delivered, 4 pending, 0 parked)" in html
    assert "(1 delivered, 3 pending, 0 parked)" in html


def _imports_in_progress(count: int) -> None:
    """`count` imports, each with one order still pending for its own endpoint."""
    ids = store_at(*(FROM + i * MS for i in range(count)))
    for n, order_id in enumerate(ids):
        endpoint = make_endpoint(f"CRM {n}")
        imports.initial_import_flag_selection(
            endpoint=endpoint, orders=Order.objects.filter(pk=order_id)
        )


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_imports_in_progress(admin_client_logged):
    """The changelist costs the same number of queries with 2 or 6 imports in progress."""
    _imports_in_progress(2)
    two = _changelist_queries(admin_client_logged)
    _imports_in_progress(4)
    assert InitialImport.objects.count() == 6
    six = _changelist_queries(admin_client_logged)
    assert six == two


def test_changelist_queries_do_not_grow_with_finished_imports(admin_client_logged):
    """With finished imports (nothing pending) the changelist costs the same for 2 or 6."""
    _imports_in_progress(2)
    PendingOrder.objects.all().delete()
    two = _changelist_queries(admin_client_logged)
    _imports_in_progress(4)
    PendingOrder.objects.all().delete()
    six = _changelist_queries(admin_client_logged)
    assert six == two


# --- Cancel -----------------------------------------------------------------------------------


def test_cancel_removes_unsent_rows_keeps_changes_and_marks_cancelled(
    admin_client_logged, flagged, timeframe
):
    """Cancel removes the import's INITIAL_IMPORT rows, keeps the one that became a CHANGE,
    marks the import cancelled and redirects to its progress page."""
    changed_id = timeframe["inside"][0]
    order = Order.objects.get(pk=changed_id)
    data = order_data(
        order_id=changed_id, creation_date_time=order.creation_date_time, contact_reference="77"
    )
    order_upsert(data=data)
    changed_row = PendingOrder.objects.get(order_id=changed_id, endpoint=flagged.endpoint)
    assert changed_row.reason == SyncReason.CHANGE
    assert PendingOrder.objects.filter(endpoint=flagged.endpoint).count() == 4  # still one each

    page = admin_client_logged.get(progress_url(flagged.pk)).content.decode()
    assert f'action="{cancel_url(flagged.pk)}"' in page

    response = admin_client_logged.post(cancel_url(flagged.pk))
    assert response.status_code == 302
    assert response["Location"] == progress_url(flagged.pk)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Cancelled: 3 unsent orders removed from the outbox." in messages

    flagged.refresh_from_db()
    assert flagged.status == InitialImport.Status.CANCELLED
    assert flagged.cancelled_at is not None
    assert flagged.removed == 3
    remaining = PendingOrder.objects.filter(endpoint=flagged.endpoint)
    assert [(r.order_id, r.reason) for r in remaining] == [(changed_id, SyncReason.CHANGE)]

    page = admin_client_logged.get(progress_url(flagged.pk))
    assert page.context["progress"].state == "cancelled"
    assert f'action="{cancel_url(flagged.pk)}"' not in page.content.decode()
    assert "Removed by the cancel</th><td>3<" in page.content.decode()


def test_cancel_twice_removes_nothing_more(admin_client_logged, flagged):
    """A second cancel is a no-op: removed stays as the first cancel left it."""
    admin_client_logged.post(cancel_url(flagged.pk))
    order_ids = store_at(FROM + dt.timedelta(hours=1))  # now pending as CHANGE for the endpoint
    response = admin_client_logged.post(cancel_url(flagged.pk))
    assert response.status_code == 302
    flagged.refresh_from_db()
    assert flagged.removed == 4
    assert flagged_ids(endpoint=flagged.endpoint) == set(order_ids)


def test_cancel_by_get_is_405(admin_client_logged, flagged):
    """The cancel URL only answers POST: a GET is 405 and changes nothing."""
    response = admin_client_logged.get(cancel_url(flagged.pk))
    assert response.status_code == 405
    flagged.refresh_from_db()
    assert flagged.status == InitialImport.Status.ACTIVE
    assert PendingOrder.objects.filter(initial_import=flagged).count() == 4


def test_cancel_unknown_import_is_404(admin_client_logged):
    """Cancelling an unknown import is a 404."""
    assert admin_client_logged.post(cancel_url(999_999)).status_code == 404


def test_cancel_leaves_other_imports_alone(admin_client_logged, flagged):
    """Cancelling one import does not touch another endpoint's import of the same orders."""
    other = imports.initial_import_create(
        endpoint=make_endpoint("Other CRM"), created_from=FROM, created_to=TO
    )
    admin_client_logged.post(cancel_url(flagged.pk))
    assert PendingOrder.objects.filter(initial_import=other).count() == 4
    other.refresh_from_db()
    assert other.status == InitialImport.Status.ACTIVE


# --- The order changelist action --------------------------------------------------------------


def action_post(order_ids, **extra) -> dict:
    return {
        "action": "flag_for_initial_import",
        "_selected_action": [str(i) for i in order_ids],
        "index": "0",
        **extra,
    }


def test_order_action_shows_the_endpoint_choice(admin_client_logged, timeframe):
    """The action's first POST shows an intermediate page: the count, the selected ids as
    hidden inputs, and only the active endpoints."""
    active = make_endpoint("Active CRM")
    paused = make_endpoint("Paused CRM", is_active=False)
    selected = timeframe["inside"][:2] + timeframe["outside"][:1]
    response = admin_client_logged.post(ORDERS, action_post(selected))
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 selected orders will be pushed" in html
    assert f'<option value="{active.pk}">Active CRM — {active.url}</option>' in html
    assert f'value="{paused.pk}"' not in html
    for order_id in selected:
        assert f'name="_selected_action" value="{order_id}"' in html
    assert 'name="action" value="flag_for_initial_import"' in html
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_order_action_flags_exactly_the_selection(admin_client_logged, timeframe):
    """POSTing the endpoint flags exactly the selected orders and redirects with a success
    message linking to the import."""
    endpoint = make_endpoint("Chosen CRM")
    make_endpoint("Other CRM")
    selected = [timeframe["inside"][1], timeframe["outside"][0], timeframe["outside"][3]]
    response = admin_client_logged.post(ORDERS, action_post(selected, endpoint=str(endpoint.pk)))
    assert response.status_code == 302
    record = InitialImport.objects.get()
    assert record.endpoint == endpoint
    assert record.flagged == record.queued == 3
    assert record.description == "selected in the order admin"
    assert record.requested_by.username == "admin"
    rows = PendingOrder.objects.all()
    assert {r.order_id for r in rows} == set(selected)
    assert {(r.endpoint_id, r.reason, r.priority, r.initial_import_id) for r in rows} == {
        (endpoint.pk, SyncReason.INITIAL_IMPORT, 1, record.pk)
    }
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1
    assert messages[0].startswith("3 orders flagged for Chosen CRM:")
    assert progress_url(record.pk) in messages[0]


def test_order_action_with_no_active_endpoint_says_so(admin_client_logged, timeframe):
    """With only a paused endpoint the intermediate page says there is none active, and
    offers no form."""
    make_endpoint("Paused CRM", is_active=False)
    response = admin_client_logged.post(ORDERS, action_post(timeframe["inside"][:1]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No active endpoint" in html
    assert 'name="endpoint"' not in html


def test_order_action_with_a_paused_endpoint_flags_nothing(admin_client_logged, timeframe):
    """Posting a paused endpoint's id (stale page) is an error message, nothing flagged."""
    paused = make_endpoint("Paused CRM", is_active=False)
    response = admin_client_logged.post(
        ORDERS, action_post(timeframe["inside"], endpoint=str(paused.pk))
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Choose an active endpoint."]
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()


def test_order_action_selection_rejected_by_the_endpoint_filters(admin_client_logged):
    """A selection the endpoint's filters reject flags nothing and says so."""
    ids = store_at(FROM, order_type=OrderType.SALE)
    endpoint = make_endpoint("Reservations only", filter_order_types=["RESERVATION"])
    response = admin_client_logged.post(ORDERS, action_post(ids, endpoint=str(endpoint.pk)))
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["No order matches: nothing was flagged."]
    assert not PendingOrder.objects.exists()
    assert not InitialImport.objects.exists()
