"""The order write services: versions, no spurious bumps, atomicity, bounded queries."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Movement, Operation, Order
from orders.services import (
    OrderExists,
    content_hash,
    order_create,
    order_data_from_instance,
    order_upsert,
    orders_bulk_upsert,
)
from tests.factories import order_data, orders_data

pytestmark = pytest.mark.django_db


def stored(order_id: int) -> Order:
    return Order.objects.prefetch_related("operations", "movements").get(order_id=order_id)


def test_a_new_order_is_version_1_with_its_operations_and_movements():
    data = order_data()
    result = order_upsert(data=data)
    order = stored(data["order_id"])
    assert result.outcomes == {data["order_id"]: "created"}
    assert order.sync_version == 1
    assert [op.operation_id for op in order.operations.all()] == sorted(
        op["operation_id"] for op in data["operations"]
    )
    assert order.movements.count() == len(data["movements"]) > 0
    assert order.content_hash == content_hash(data)


def test_saving_identical_content_does_not_bump_the_version():
    data = order_data()
    order_upsert(data=data)
    with CaptureQueriesContext(connection) as queries:
        result = order_upsert(data=order_data_from_instance(stored(data["order_id"])))
    assert result.outcomes == {data["order_id"]: "unchanged"}
    assert stored(data["order_id"]).sync_version == 1
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert not [w for w in writes if "orders_" in w], writes


def test_identical_content_with_children_in_another_order_is_unchanged():
    data = order_data()
    order_upsert(data=data)
    shuffled = {
        **data,
        "operations": data["operations"][::-1],
        "movements": data["movements"][::-1],
    }
    assert order_upsert(data=shuffled).outcomes[data["order_id"]] == "unchanged"


def test_a_changed_field_bumps_the_version_and_stamps_the_modification_time():
    data = order_data()
    order_upsert(data=data)
    before = dt.datetime.now(dt.UTC)
    changed = {**data, "order_state": "CANCELLED", "last_mod_date_time": None}
    result = order_upsert(data=changed)
    order = stored(data["order_id"])
    assert result.outcomes[data["order_id"]] == "updated"
    assert result.versions[data["order_id"]] == order.sync_version == 2
    assert order.order_state == "CANCELLED"
    assert order.last_mod_date_time >= before


def test_a_changed_operation_replaces_the_children():
    data = order_data()
    order_upsert(data=data)
    operations = [dict(op) for op in data["operations"]]
    operations[0]["quantity"] += 1
    dropped = operations.pop()
    order_upsert(data={**data, "operations": operations, "movements": data["movements"][:1]})
    order = stored(data["order_id"])
    assert order.sync_version == 2
    assert order.operations.count() == len(operations)
    assert not order.operations.filter(operation_id=dropped["operation_id"]).exists()
    assert (
        order.operations.get(operation_id=operations[0]["operation_id"]).quantity
        == (operations[0]["quantity"])
    )
    assert order.movements.count() == 1


def test_a_new_modification_time_from_s360_alone_is_a_change():
    data = order_data()
    order_upsert(data=data)
    later = data["last_mod_date_time"] + dt.timedelta(minutes=5)
    assert order_upsert(data={**data, "last_mod_date_time": later}).outcomes == {
        data["order_id"]: "updated"
    }
    order = stored(data["order_id"])
    assert (order.sync_version, order.last_mod_date_time) == (2, later)


def test_each_change_bumps_once_more():
    data = order_data()
    for state in ("CLOSED", "CANCELLED", "CLOSED", "CLOSED"):
        order_upsert(data={**data, "order_state": state})
    assert stored(data["order_id"]).sync_version == 3


def test_bulk_upsert_reports_each_outcome_and_version():
    first, second, third = orders_data(3)
    orders_bulk_upsert(orders=[first, second])
    result = orders_bulk_upsert(orders=[first, {**second, "sale_amount": 1}, third])
    assert result.outcomes == {
        first["order_id"]: "unchanged",
        second["order_id"]: "updated",
        third["order_id"]: "created",
    }
    assert result.versions == {first["order_id"]: 1, second["order_id"]: 2, third["order_id"]: 1}
    assert (result.count("created"), result.count("updated"), result.count("unchanged")) == (
        1,
        1,
        1,
    )


def test_bulk_upsert_refuses_a_repeated_order_id_and_writes_nothing():
    first, second = orders_data(2)
    with pytest.raises(ValidationError, match=str(first["order_id"])):
        orders_bulk_upsert(orders=[first, second, {**first, "sale_amount": 5}])
    assert not Order.objects.exists()


def test_a_failing_bulk_writes_nothing():
    good, bad = orders_data(2)
    bad["operations"] = bad["operations"] + [dict(bad["operations"][0])]  # duplicate operationId
    with pytest.raises(Exception):  # noqa: B017 - the database refuses it; which error varies
        orders_bulk_upsert(orders=[good, bad])
    assert not Order.objects.exists()
    assert not Operation.objects.exists()


def test_order_create_refuses_an_existing_order_id():
    data = order_data()
    order_create(data=data)
    with pytest.raises(OrderExists):
        order_create(data={**data, "order_state": "CANCELLED"})
    assert stored(data["order_id"]).order_state == data["order_state"]


@pytest.mark.parametrize("small, large", [(3, 60)])
def test_bulk_upsert_query_count_does_not_grow_per_order(small, large):
    def count_queries(orders):
        with CaptureQueriesContext(connection) as queries:
            orders_bulk_upsert(orders=orders)
        return len(queries)

    few, many = orders_data(small), orders_data(large)
    assert count_queries(many) == count_queries(few)
    # and the same for a bulk where every order changed
    # the demo data never holds EXPIRED orders: every order changes
    changed_few = [{**o, "order_state": "EXPIRED", "last_mod_date_time": None} for o in few]
    changed_many = [{**o, "order_state": "EXPIRED", "last_mod_date_time": None} for o in many]
    assert count_queries(changed_many) == count_queries(changed_few)
    assert Movement.objects.filter(order_id=many[-1]["order_id"]).count() == len(
        many[-1]["movements"]
    )


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_changes_of_one_order_get_distinct_versions():
    """Two writers changing the same order at once: versions 2 and 3, never 2 twice."""
    data = order_data()
    order_upsert(data=data)
    barrier = threading.Barrier(4)
    results = []

    def change(state_index: int) -> None:
        barrier.wait()
        try:
            changed = {**data, "sale_amount": 1000 + state_index, "last_mod_date_time": None}
            results.append(order_upsert(data=changed).versions[data["order_id"]])
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [2, 3, 4, 5]
    assert stored(data["order_id"]).sync_version == 5


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creates_of_one_new_order_never_share_a_version():
    data = order_data()
    barrier = threading.Barrier(3)
    results = []

    def create(amount: int) -> None:
        barrier.wait()
        try:
            results.append(
                order_upsert(data={**data, "sale_amount": amount}).versions[data["order_id"]]
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(1000 * i,)) for i in range(1, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2, 3]
