"""The order admin (/admin/orders/order/): a bounded changelist, exact search, filters, and
edits that bump sync_version only when the content changes."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest
from django.contrib.admin.filters import DateFieldListFilter
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import services
from orders.admin import CappedCountPaginator
from orders.models import Order, OrderState, OrderType
from orders.services import orders_bulk_upsert
from tests.factories import create_orders, order_data

CHANGELIST = "/admin/orders/order/"
ADD = "/admin/orders/order/add/"

pytestmark = pytest.mark.django_db


def change_url(order_id: int) -> str:
    return f"/admin/orders/order/{order_id}/change/"


def listed_ids(response) -> set[int]:
    """The orderIds on the rendered changelist page."""
    return {order.order_id for order in response.context["cl"].result_list}


def store(*orders) -> None:
    orders_bulk_upsert(orders=list(orders))


class _FormFields(HTMLParser):
    """What a browser submits for the change form: every named input, select and textarea."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and "__prefix__" not in name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data[name] = a.get("value") or ("on" if kind == "checkbox" else "")
        elif tag == "select" and name and "__prefix__" not in name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value", "")
        elif tag == "textarea" and name and "__prefix__" not in name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers drop the newline that follows <textarea>.
            self.data[self._textarea] = self.data[self._textarea].removeprefix("\n")
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def form_post_data(client, url: str) -> dict[str, str]:
    """GET an admin form and return the POST data a browser would send by pressing Save."""
    response = client.get(url)
    assert response.status_code == 200
    parser = _FormFields()
    parser.feed(response.content.decode())
    data = {k: v for k, v in parser.data.items() if k not in ("q", "csrfmiddlewaretoken")}
    data["_save"] = "Save"
    return data


def post_form(client, url: str, data: dict[str, str]):
    response = client.post(url, data)
    errors = ""
    if response.status_code == 200 and response.context and "adminform" in response.context:
        errors = f"{response.context['adminform'].form.errors} " + " ".join(
            str(f.formset.errors) + str(f.formset.non_form_errors())
            for f in response.context["inline_admin_formsets"]
        )
    assert response.status_code == 302, errors
    return response


# --- Changelist --------------------------------------------------------------------------


def test_changelist_renders_orders(admin_client_logged):
    """The changelist renders 200 and lists every stored order."""
    data = create_orders(5)
    response = admin_client_logged.get(CHANGELIST)
    assert response.status_code == 200
    assert listed_ids(response) == {o["order_id"] for o in data}
    assert str(data[0]["order_id"]) in response.content.decode()


def test_changelist_query_count_does_not_grow_with_orders(admin_client_logged):
    """Rendering 60 orders costs exactly as many queries as rendering 5 (no N+1)."""
    create_orders(5)
    admin_client_logged.get(CHANGELIST)  # warm up session/content-type caches
    with CaptureQueriesContext(connection) as few:
        response = admin_client_logged.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 5

    create_orders(55)
    with CaptureQueriesContext(connection) as many:
        response = admin_client_logged.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 60
    assert len(many) == len(few), "\n".join(q["sql"] for q in many.captured_queries)


def test_changelist_count_is_capped(admin_client_logged, monkeypatch):
    """Past CappedCountPaginator.CAP the count stops at the cap and the page still renders."""
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    create_orders(25)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client_logged.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 10
    assert response.context["cl"].full_result_count is None
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the changelist counted nothing"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_changelist_count_below_cap_is_exact(admin_client_logged, monkeypatch):
    """Below the cap the result count is the exact number of orders."""
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    create_orders(7)
    response = admin_client_logged.get(CHANGELIST)
    assert response.context["cl"].result_count == 7


# --- Search ------------------------------------------------------------------------------


def test_search_by_order_id_finds_exactly_that_order(admin_client_logged):
    """Searching an exact orderId lists that order and no other."""
    data = create_orders(5)
    wanted = data[2]["order_id"]
    response = admin_client_logged.get(CHANGELIST, {"q": str(wanted)})
    assert response.status_code == 200
    assert listed_ids(response) == {wanted}


def test_search_by_order_id_prefix_finds_nothing(admin_client_logged):
    """The orderId search is exact: a prefix of an orderId matches no order."""
    data = create_orders(3)
    response = admin_client_logged.get(CHANGELIST, {"q": str(data[0]["order_id"])[:-2]})
    assert response.status_code == 200
    assert listed_ids(response) == set()


def test_search_by_contact_number_finds_that_contacts_orders(admin_client_logged):
    """Searching a contact number (leading zeros included) lists that contact's orders."""
    mine = [order_data(contact_reference="0000123456") for _ in range(2)]
    other = order_data(contact_reference="0000654321")
    store(*mine, other)
    response = admin_client_logged.get(CHANGELIST, {"q": "0000123456"})
    assert response.status_code == 200
    assert listed_ids(response) == {o["order_id"] for o in mine}


def test_search_with_non_numeric_term_does_not_fail(admin_client_logged):
    """A non-numeric search term renders an empty result, not a server error."""
    create_orders(3)
    response = admin_client_logged.get(CHANGELIST, {"q": "abc"})
    assert response.status_code == 200
    assert listed_ids(response) == set()


def _search_plan(admin_client_logged, term: str) -> str:
    """The query plans of the changelist's order lookups when searching for a term."""
    with CaptureQueriesContext(connection) as queries:
        response = admin_client_logged.get(CHANGELIST, {"q": term})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    table = connection.ops.quote_name(Order._meta.db_table)
    lookups = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and f"FROM {table}" in q["sql"]
        and "COUNT(" not in q["sql"]
        and "DISTINCT" not in q["sql"]
    ]
    assert lookups
    plans = []
    with connection.cursor() as cursor:
        for sql in lookups:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask for an index
                cursor.execute(f"EXPLAIN {sql}")
            else:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))
    return plans


def _index_lookup(plans: list[str]) -> bool:
    """Whether every plan finds rows through an index condition rather than scanning them."""
    if connection.vendor == "postgresql":
        return all("Index Cond" in plan for plan in plans)
    return all(any(line.startswith("SEARCH") for line in plan.splitlines()) for plan in plans)


def test_search_by_order_id_uses_the_primary_key(admin_client_logged):
    """The orderId search is answered from the primary key, not by scanning every order."""
    data = create_orders(20)
    plans = _search_plan(admin_client_logged, str(data[3]["order_id"]))
    assert _index_lookup(plans), plans


def test_search_by_contact_uses_the_contact_index(admin_client_logged):
    """The contact-number search is answered from order_contact_idx."""
    store(*[order_data(contact_reference=f"{n:010d}") for n in range(20)])
    plans = _search_plan(admin_client_logged, "0000000007")
    assert _index_lookup(plans), plans
    assert any("order_contact_idx" in plan for plan in plans), plans


# --- Filters -----------------------------------------------------------------------------


def test_filter_by_order_state(admin_client_logged):
    """The orderState filter lists only orders in that state."""
    closed = order_data(order_state=OrderState.CLOSED)
    abandoned = order_data(order_state=OrderState.ABANDONED)
    store(closed, abandoned)
    response = admin_client_logged.get(CHANGELIST, {"order_state__exact": "ABANDONED"})
    assert response.status_code == 200
    assert listed_ids(response) == {abandoned["order_id"]}


def test_filter_by_order_type(admin_client_logged):
    """The orderType filter lists only orders of that type."""
    sale = order_data(order_type=OrderType.SALE)
    refund = order_data(order_type=OrderType.REFUND_CLIENT)
    store(sale, refund)
    response = admin_client_logged.get(CHANGELIST, {"order_type__exact": "REFUND_CLIENT"})
    assert response.status_code == 200
    assert listed_ids(response) == {refund["order_id"]}


def test_filter_by_sales_channel(admin_client_logged):
    """?channel=WEB lists only the WEB channel's orders, and the filter offers each channel."""
    web = order_data(sales_channel_code="WEB")
    box = order_data(sales_channel_code="BOX")
    store(web, box)
    response = admin_client_logged.get(CHANGELIST, {"channel": "WEB"})
    assert response.status_code == 200
    assert listed_ids(response) == {web["order_id"]}
    (spec,) = [
        s
        for s in response.context["cl"].filter_specs
        if getattr(s, "parameter_name", None) == "channel"
    ]
    assert [code for code, _ in spec.lookup_choices] == ["BOX", "WEB"]


def test_filter_by_creation_date(admin_client_logged):
    """The creation date filter's "Past 7 days" choice lists only the recent orders."""
    now = timezone.now()
    recent = order_data(creation_date_time=now - dt.timedelta(days=1))
    old = order_data(creation_date_time=now - dt.timedelta(days=30))
    store(recent, old)
    response = admin_client_logged.get(CHANGELIST)
    cl = response.context["cl"]
    (spec,) = [
        s
        for s in cl.filter_specs
        if isinstance(s, DateFieldListFilter) and s.field_path == "creation_date_time"
    ]
    (choice,) = [c for c in spec.choices(cl) if str(c["display"]) == "Past 7 days"]
    response = admin_client_logged.get(CHANGELIST + choice["query_string"])
    assert response.status_code == 200
    assert listed_ids(response) == {recent["order_id"]}


# --- Change and add forms ----------------------------------------------------------------


def test_change_page_shows_operations_and_movements(admin_client_logged):
    """An order's change page renders its operations and movements inlines."""
    (data,) = create_orders(1)
    response = admin_client_logged.get(change_url(data["order_id"]))
    assert response.status_code == 200
    html = response.content.decode()
    inlines = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    assert set(inlines) == {"operations", "movements"}
    assert inlines["operations"].formset.total_form_count() == len(data["operations"])
    assert inlines["movements"].formset.total_form_count() == len(data["movements"])
    for op in data["operations"]:
        assert f'value="{op["operation_id"]}"' in html
    for mv in data["movements"]:
        assert f'value="{mv["movement_id"]}"' in html


def test_admin_edit_bumps_sync_version_once(admin_client_logged):
    """Changing the state in the admin makes version 2 with a new lastModDateTime; saving
    the same content again keeps version 2."""
    (data,) = create_orders(1, now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    order_id = data["order_id"]
    before = Order.objects.get(pk=order_id)
    assert before.sync_version == 1
    new_state = "CANCELLED" if before.order_state != "CANCELLED" else "CLOSED"

    form = form_post_data(admin_client_logged, change_url(order_id))
    assert form["operations-TOTAL_FORMS"] == str(len(data["operations"]))
    form["order_state"] = new_state
    post_form(admin_client_logged, change_url(order_id), form)

    after = Order.objects.get(pk=order_id)
    assert after.order_state == new_state
    assert after.sync_version == 2
    assert after.last_mod_date_time > before.last_mod_date_time
    assert after.content_hash == services.content_hash(services.order_data_from_instance(after))
    assert after.operations.count() == len(data["operations"])
    assert after.movements.count() == len(data["movements"])

    post_form(
        admin_client_logged,
        change_url(order_id),
        form_post_data(admin_client_logged, change_url(order_id)),
    )
    again = Order.objects.get(pk=order_id)
    assert again.sync_version == 2
    assert again.last_mod_date_time == after.last_mod_date_time
    assert again.content_hash == after.content_hash


def test_admin_edit_of_an_operation_bumps_sync_version(admin_client_logged):
    """Changing an operation line in the inline is a content change: version 2."""
    (data,) = create_orders(1)
    order_id = data["order_id"]
    form = form_post_data(admin_client_logged, change_url(order_id))
    form["operations-0-quantity"] = str(int(form["operations-0-quantity"]) + 5)
    post_form(admin_client_logged, change_url(order_id), form)
    order = Order.objects.get(pk=order_id)
    assert order.sync_version == 2
    first = order.operations.order_by("operation_id").first()
    assert first.quantity == data["operations"][0]["quantity"] + 5


def test_admin_save_without_changes_keeps_version_and_dates(admin_client_logged):
    """Pressing Save on an untouched order changes nothing: version 1, same timestamps."""
    created = dt.datetime(2025, 6, 1, 10, 30, 15, 123000, tzinfo=dt.UTC)
    data = order_data(creation_date_time=created)
    store(data)
    url = change_url(data["order_id"])
    post_form(admin_client_logged, url, form_post_data(admin_client_logged, url))
    order = Order.objects.get(pk=data["order_id"])
    assert order.creation_date_time == created
    assert order.sync_version == 1


def test_admin_add_creates_version_1_with_content_hash(admin_client_logged):
    """An order added in the admin has version 1 and the hash of its stored content."""
    form = form_post_data(admin_client_logged, ADD)
    assert form["operations-TOTAL_FORMS"] == "0"
    form.update(
        {
            "order_id": "77000000001",
            "order_state": "CLOSED",
            "order_type": "SALE",
            "order_originator": "DESK",
            "creation_date_time_0": "2025-05-04",
            "creation_date_time_1": "12:00:00",
            "contact_reference": "0000042000",
            "sales_channel_code": "BOX",
            "currency_code": "CHF",
            "currency_fraction_digit": "2",
            "sale_amount": "40000",
            "operations-TOTAL_FORMS": "1",
            "operations-0-operation_id": "7700000000101",
            "operations-0-type": "SALE",
            "operations-0-kind": "SINGLE_ENTRY",
            "operations-0-quantity": "2",
            "operations-0-base_price": "20000",
            "operations-0-unit_price": "20000",
            "operations-0-total_amount": "40000",
        }
    )
    started = timezone.now()
    post_form(admin_client_logged, ADD, form)
    order = Order.objects.get(pk=77000000001)
    assert order.sync_version == 1
    assert order.content_hash
    assert order.content_hash == services.content_hash(services.order_data_from_instance(order))
    assert order.operations.count() == 1
    assert order.contact_reference == "0000042000"
    assert order.creation_date_time == dt.datetime(2025, 5, 4, 12, tzinfo=dt.UTC)
    assert order.last_mod_date_time >= started
