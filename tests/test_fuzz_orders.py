"""Fuzzing the order serializer and the order API with Hypothesis.

Properties: a generated valid `orderDetailsData` reads back exactly as it was sent; any JSON,
in particular a valid order with a few values broken, is either valid or refused with field
messages, by the serializer (never an exception) and by POST, PUT, PATCH and bulk (a 400 that
names the fields, never a 500). Examples per test: the Hypothesis profile (tests/conftest.py).

Database: the tests share their function's database; each example runs in a savepoint rolled
back at its end, so what one example stores never meets the next (hence the suppressed
function-scoped-fixture health check).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import (
    REVERSING_ORDER_TYPES,
    MovementType,
    Order,
    OrderOriginator,
    OrderState,
    OrderType,
)
from orders.serializers import LONG_MAX, OrderSerializer

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/orders/"
LONG_MIN = -LONG_MAX - 1
per_example_db = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- valid orders, as the API writes them -----------------------------------------------------

ids = st.integers(1, LONG_MAX)
optional_ids = st.none() | ids
codes = st.from_regex(r"[A-Z][A-Z0-9_]{0,31}", fullmatch=True)


def text(max_size: int) -> st.SearchStrategy[str]:
    # The API trims text (DRF's trim_whitespace), so only trimmed text reads back unchanged.
    return st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=max_size
    ).map(str.strip)


def instants() -> st.SearchStrategy[str]:
    """ISO 8601 as the API answers it: UTC, with a `Z`."""
    return st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.UTC),
    ).map(lambda t: t.isoformat().replace("+00:00", "Z"))


def amounts(order_type: str) -> st.SearchStrategy[int]:
    return st.integers(LONG_MIN if order_type in REVERSING_ORDER_TYPES else 0, LONG_MAX)


@st.composite
def operations(draw, order_type: str):
    return {
        "operationId": draw(ids),
        "type": draw(st.just("") | codes),
        "kind": draw(st.sampled_from(["", "SINGLE_ENTRY", "CHARGES"]) | codes),
        "quantity": draw(st.integers(0, 2**31 - 1)),
        "basePrice": draw(st.integers(0, LONG_MAX)),
        "unitPrice": draw(st.integers(0, LONG_MAX)),
        "totalAmount": draw(amounts(order_type)),
        "productId": draw(optional_ids),
        "productCode": draw(text(64)),
        "product": draw(text(255)),
        "eventId": draw(optional_ids),
        "performanceId": draw(optional_ids),
        "performance": draw(text(255)),
        "seatCategoryId": draw(optional_ids),
        "audienceSubCategoryId": draw(optional_ids),
        "parentOperationId": draw(optional_ids),
    }


movements = st.fixed_dictionaries(
    {
        "movementId": ids,
        "type": st.sampled_from(MovementType.values),
        "seatId": optional_ids,
        "seatCategoryId": optional_ids,
        "seatCategory": text(128),
        "contingentId": optional_ids,
        "areaId": optional_ids,
    }
)


@st.composite
def valid_orders(draw):
    order_type = draw(st.sampled_from(OrderType.values))
    return {
        "orderId": draw(ids),
        "orderSecretId": draw(text(64)),
        "orderState": draw(st.sampled_from(OrderState.values)),
        "orderType": order_type,
        "orderOriginator": draw(st.sampled_from(OrderOriginator.values)),
        "creationDateTime": draw(instants()),
        "referenceDate": draw(st.none() | instants()),
        "expirationDate": draw(st.none() | instants()),
        "contactReference": draw(st.from_regex(r"[0-9]{0,32}", fullmatch=True)),
        "salesChannelCode": draw(text(32).filter(bool)),
        "salesChannelName": draw(text(128)),
        "catalogCurrency": {
            "currencyCode": draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
            "fractionDigit": draw(st.integers(0, 3)),
            "symbol": draw(text(8)),
        },
        "saleAmount": draw(amounts(order_type)),
        "preSaleAmount": draw(amounts(order_type)),
        "reservationAmount": draw(amounts(order_type)),
        "optionAmount": draw(amounts(order_type)),
        "waitingAccountBalanceAmount": draw(amounts(order_type)),
        "lastModDateTime": draw(instants()),
        "operationDatas": draw(
            st.lists(operations(order_type), max_size=3, unique_by=lambda o: o["operationId"])
        ),
        "movementDatas": draw(st.lists(movements, max_size=3, unique_by=lambda m: m["movementId"])),
    }


def canonical(body: dict) -> dict:
    """Operations and movements are sets (design.md): compare them in id order."""
    body = {k: v for k, v in body.items() if k != "syncVersion"}
    body["operationDatas"] = sorted(body["operationDatas"], key=lambda o: o["operationId"])
    body["movementDatas"] = sorted(body["movementDatas"], key=lambda m: m["movementId"])
    return body


@per_example_db
@given(order=valid_orders())
def test_a_valid_order_reads_back_as_it_was_sent(api, order):
    with rolled_back():
        created = api.post(ORDERS, order, format="json")
        assert created.status_code == 201, created.json()
        assert canonical(created.json()) == canonical(order)
        read = api.get(f"{ORDERS}{order['orderId']}/").json()
        assert canonical(read) == canonical(order)
        assert read["syncVersion"] == 1
        # Sending the same order again changes nothing (no spurious push).
        again = api.put(f"{ORDERS}{order['orderId']}/", order, format="json")
        assert (again.status_code, again.json()["syncVersion"]) == (200, 1)


# --- anything else: valid, or refused with field messages ---------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Values at the edges of what the fields take: out of the 64-bit range, instants whose UTC
# conversion leaves the calendar, NUL and lone surrogates, numbers as text, wrong types.
edge_values = st.sampled_from(
    [
        None,
        "",
        " ",
        0,
        -1,
        LONG_MAX,
        LONG_MAX + 1,
        LONG_MIN,
        LONG_MIN - 1,
        10**30,
        -(10**30),
        1.5,
        1e308,
        True,
        "12",
        "1e309",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01",
        "2026-02-30T00:00:00Z",
        "\x00",
        "\ud800",
        "CLOSED\n",
        [],
        {},
        [{}],
    ]
)


def paths(value, prefix=()):
    """Every place in a JSON document where a value can be replaced or a key dropped."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replaced(document, path, new):
    if not path:
        return new
    copy = list(document) if isinstance(document, list) else dict(document)
    copy[path[0]] = replaced(document[path[0]], path[1:], new)
    return copy


def dropped(document, path):
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict):
        return replaced(document, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
    return replaced(document, path[:-1], [v for i, v in enumerate(parent) if i != path[-1]])


@st.composite
def broken_orders(draw):
    """A valid order with one to three changes: a value replaced, a key dropped or added."""
    order = draw(valid_orders())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(order))[1:]))
        change = draw(st.sampled_from(["edge", "any", "drop", "add"]))
        if change == "drop":
            order = dropped(order, path)
        elif change == "add":
            extra = {draw(st.text(max_size=8)): 1}
            order = replaced(order, path[:-1], {**_at(order, path[:-1]), **extra})
        else:
            order = replaced(order, path, draw(edge_values if change == "edge" else json_values))
        if not isinstance(order, dict):
            break
    return order


def _at(document, path):
    for step in path:
        document = document[step]
    return document if isinstance(document, dict) else {}


def assert_field_errors(errors) -> None:
    """Errors name fields (or an index, or `detail`) with messages: JSON all the way down."""
    assert isinstance(errors, dict | list) and errors
    json.dumps(errors)


@given(data=broken_orders() | json_values)
def test_the_serializer_validates_or_names_the_fields(data):
    serializer = OrderSerializer(data=data)
    if not serializer.is_valid():
        assert_field_errors(serializer.errors)


def send(api, method: str, url: str, body):
    """As a client sends JSON: ASCII, with \\u escapes (a lone surrogate arrives as one)."""
    return getattr(api, method)(url, json.dumps(body), content_type="application/json")


def assert_refused_or_stored(response) -> None:
    # 404: a PATCH of an order that does not exist.
    assert response.status_code in (200, 201, 400, 404, 409), response.content[:500]
    body = response.json()
    if response.status_code == 400:
        assert_field_errors(body)


@per_example_db
@given(order=broken_orders())
def test_post_put_and_patch_refuse_bad_orders_with_400(api, order):
    with rolled_back():
        assert_refused_or_stored(send(api, "post", ORDERS, order))
        order_id = order.get("orderId") if isinstance(order, dict) else None
        target = order_id if isinstance(order_id, int) and 0 < order_id <= LONG_MAX else 1
        assert_refused_or_stored(send(api, "put", f"{ORDERS}{target}/", order))
        assert_refused_or_stored(send(api, "patch", f"{ORDERS}{target}/", order))


@per_example_db
@given(orders=st.lists(broken_orders() | valid_orders(), min_size=1, max_size=4))
def test_a_bulk_refuses_bad_orders_with_400_naming_each(api, orders):
    with rolled_back():
        before = Order.objects.count()
        response = send(api, "post", f"{ORDERS}bulk/", orders)
        assert_refused_or_stored(response)
        # Every order the serializer refuses on its own is named; nothing else is.
        refused = {
            i
            for i, order in enumerate(orders)
            if not isinstance(order, dict) or not OrderSerializer(data=order).is_valid()
        }
        if response.status_code == 400:
            named = {e["index"] for e in response.json()["errors"]}
            assert refused <= named <= set(range(len(orders))), (refused, named)
            assert Order.objects.count() == before  # all or nothing: no half-written batch
        else:
            assert refused == set(), refused
