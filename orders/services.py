"""Writes to orders. Every change of content bumps `sync_version` in the same transaction;
saving identical content changes nothing (no spurious pushes to the CRM)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from sync.outbox import ChangedOrder, outbox_record

from .models import Movement, Operation, Order

# The largest bulk the service takes in one transaction (the API allows 1000 per request;
# seed_demo and benchmarks feed larger lists through here in one go).
SELECT_CHUNK = 900
WRITE_BATCH = 1000
# A concurrent writer may insert the same new orderId between our read and our insert.
# On retry we see its row and bump from there: versions never collide.
INSERT_RETRIES = 3


class OperationData(TypedDict):
    operation_id: int
    type: str
    kind: str
    quantity: int
    base_price: int
    unit_price: int
    total_amount: int
    product_id: int | None
    product_code: str
    product: str
    event_id: int | None
    performance_id: int | None
    performance: str
    seat_category_id: int | None
    audience_sub_category_id: int | None
    parent_operation_id: int | None


class MovementData(TypedDict):
    movement_id: int
    type: str
    seat_id: int | None
    seat_category_id: int | None
    seat_category: str
    contingent_id: int | None
    area_id: int | None


class OrderData(TypedDict):
    """One validated `orderDetailsData`, with model field names."""

    order_id: int
    order_secret_id: str
    order_state: str
    order_type: str
    order_originator: str
    creation_date_time: dt.datetime
    reference_date: dt.datetime | None
    expiration_date: dt.datetime | None
    contact_reference: str
    sales_channel_code: str
    sales_channel_name: str
    currency_code: str
    currency_fraction_digit: int
    currency_symbol: str
    sale_amount: int
    pre_sale_amount: int
    reservation_amount: int
    option_amount: int
    waiting_account_balance_amount: int
    # S-360's own modification time; when absent, the time we record the change.
    last_mod_date_time: NotRequired[dt.datetime | None]
    operations: list[OperationData]
    movements: list[MovementData]


_NOT_CONTENT = {"last_mod_date_time", "sync_version", "content_hash"}
ORDER_FIELDS = tuple(
    f.attname for f in Order._meta.concrete_fields if f.attname not in _NOT_CONTENT
)
OPERATION_FIELDS = tuple(
    f.attname for f in Operation._meta.concrete_fields if f.attname not in {"id", "order_id"}
)
MOVEMENT_FIELDS = tuple(
    f.attname for f in Movement._meta.concrete_fields if f.attname not in {"id", "order_id"}
)
_ORDER_UPDATE_FIELDS = [f for f in ORDER_FIELDS if f != "order_id"] + [
    "last_mod_date_time",
    "sync_version",
    "content_hash",
]


@dataclass
class UpsertResult:
    """What a bulk upsert did to each order ("created", "updated", "unchanged") and the
    order's version after it, keyed by orderId in input order."""

    outcomes: dict[int, str] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    def ids(self, outcome: str) -> list[int]:
        return [order_id for order_id, o in self.outcomes.items() if o == outcome]


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def content_hash(data: OrderData) -> str:
    """Return the sha256 of the order's canonical content (children sorted by their ids)."""
    doc = [
        [data[f] for f in ORDER_FIELDS],  # type: ignore[literal-required]
        [
            [op[f] for f in OPERATION_FIELDS]  # type: ignore[literal-required]
            for op in sorted(data["operations"], key=lambda op: op["operation_id"])
        ],
        [
            [mv[f] for f in MOVEMENT_FIELDS]  # type: ignore[literal-required]
            for mv in sorted(data["movements"], key=lambda mv: mv["movement_id"])
        ],
    ]
    text = json.dumps(doc, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def order_data_from_instance(order: Order) -> OrderData:
    """Return the stored content of an order (with its operations and movements)."""
    data = {f: getattr(order, f) for f in ORDER_FIELDS}
    data["last_mod_date_time"] = order.last_mod_date_time
    data["operations"] = [
        {f: getattr(op, f) for f in OPERATION_FIELDS} for op in order.operations.all()
    ]
    data["movements"] = [
        {f: getattr(mv, f) for f in MOVEMENT_FIELDS} for mv in order.movements.all()
    ]
    return data  # type: ignore[return-value]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def orders_bulk_upsert(*, orders: Sequence[OrderData]) -> UpsertResult:
    """Create or replace each order (with its operations and movements), atomically.

    A new order gets version 1; a changed one its version + 1; an identical one is left alone.
    A `last_mod_date_time` different from the stored one counts as a change.
    """
    ids = [o["order_id"] for o in orders]
    if len(set(ids)) != len(ids):
        seen: set[int] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise ValidationError(f"orderId appears more than once: {dupes[:10]}")
    hashes = [content_hash(o) for o in orders]
    for attempt in range(INSERT_RETRIES):
        try:
            with transaction.atomic():
                return _write(orders, hashes)
        except IntegrityError:
            if attempt == INSERT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


class OrderExists(Exception):
    """The orderId of an order to create is already stored."""


def order_create(*, data: OrderData) -> UpsertResult:
    """Create one new order at version 1; raise OrderExists if its orderId is taken."""
    try:
        with transaction.atomic():
            return _write([data], [content_hash(data)], create_only=True)
    except IntegrityError:  # inserted concurrently, after our read
        raise OrderExists(data["order_id"]) from None


def order_upsert(*, data: OrderData) -> UpsertResult:
    """Create or replace one order; see `orders_bulk_upsert`."""
    return orders_bulk_upsert(orders=[data])


def _write(
    orders: Sequence[OrderData], hashes: list[str], *, create_only: bool = False
) -> UpsertResult:
    stored: dict[int, tuple[str, int, dt.datetime]] = {}
    for chunk in _chunks([o["order_id"] for o in orders], SELECT_CHUNK):
        # Row locks (PostgreSQL) keep two concurrent upserts of one order from both
        # reading version N and both writing N + 1. SQLite serializes writers anyway.
        rows = (
            Order.objects.select_for_update()
            .filter(order_id__in=chunk)
            .values_list("order_id", "content_hash", "sync_version", "last_mod_date_time")
        )
        stored.update({row[0]: row[1:] for row in rows})
    if create_only and stored:
        raise OrderExists(*stored)

    now = timezone.now()
    result = UpsertResult()
    new_orders: list[Order] = []
    changed_orders: list[Order] = []
    children_of: list[OrderData] = []
    for data, digest in zip(orders, hashes, strict=True):
        order_id = data["order_id"]
        incoming_mod = data.get("last_mod_date_time")
        current = stored.get(order_id)
        if current is not None:
            current_hash, current_version, current_mod = current
            if digest == current_hash and incoming_mod in (None, current_mod):
                result.outcomes[order_id] = "unchanged"
                result.versions[order_id] = current_version
                continue
        version = 1 if current is None else current[1] + 1
        order = Order(
            **{f: data[f] for f in ORDER_FIELDS},  # type: ignore[literal-required]
            last_mod_date_time=incoming_mod or now,
            sync_version=version,
            content_hash=digest,
        )
        (new_orders if current is None else changed_orders).append(order)
        result.outcomes[order_id] = "created" if current is None else "updated"
        result.versions[order_id] = version
        children_of.append(data)

    Order.objects.bulk_create(new_orders, batch_size=WRITE_BATCH)
    if changed_orders:
        # Every changed row is locked above, so this always takes the UPDATE branch.
        Order.objects.bulk_create(
            changed_orders,
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=["order_id"],
            update_fields=_ORDER_UPDATE_FIELDS,
        )
        for chunk in _chunks([o.order_id for o in changed_orders], SELECT_CHUNK):
            Operation.objects.filter(order_id__in=chunk).delete()
            Movement.objects.filter(order_id__in=chunk).delete()
    _insert_children(children_of)
    # Same transaction: an order change and its place in the outbox commit together or not at all.
    outbox_record(orders=[_changed(o) for o in (*new_orders, *changed_orders)], now=now)
    return result


def _changed(order: Order) -> ChangedOrder:
    return ChangedOrder(
        order.order_id,
        order.sync_version,
        order.order_type,
        order.order_state,
        order.sales_channel_code,
    )


def _insert_children(orders: list[OrderData]) -> None:
    """Write the operations and movements of new or replaced orders.

    These are ~10 rows per order and plain values (ints, text, NULL): one prepared INSERT run
    with executemany is several times faster than the ORM compiling each value of each row.
    """
    _insert_rows(
        Operation,
        ("order_id", *OPERATION_FIELDS),
        [
            (o["order_id"], *(op[f] for f in OPERATION_FIELDS))  # type: ignore[literal-required]
            for o in orders
            for op in o["operations"]
        ],
    )
    _insert_rows(
        Movement,
        ("order_id", *MOVEMENT_FIELDS),
        [
            (o["order_id"], *(mv[f] for f in MOVEMENT_FIELDS))  # type: ignore[literal-required]
            for o in orders
            for mv in o["movements"]
        ],
    )


def _insert_rows(model: type[Model], columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one statement: 3-4x faster than a pipelined INSERT each.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (names from the model)
        for batch in _chunks(rows, WRITE_BATCH * 10):
            cursor.executemany(sql, batch)


def order_record_admin_change(*, order_id: int) -> int:
    """Bump the version of an order edited in place (the admin), if its content changed.

    Returns the order's version after the check.
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .prefetch_related("operations", "movements")
            .get(order_id=order_id)
        )
        digest = content_hash(order_data_from_instance(order))
        if digest == order.content_hash:
            return order.sync_version
        # An order created in the admin has no hash yet: that is its first version.
        version = order.sync_version + 1 if order.content_hash else order.sync_version
        Order.objects.filter(order_id=order_id).update(
            content_hash=digest, sync_version=version, last_mod_date_time=timezone.now()
        )
        order.sync_version = version
        outbox_record(orders=[_changed(order)])
        return version
