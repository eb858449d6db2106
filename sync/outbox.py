"""The outbox: one pending row per (endpoint, order) at the order's newest version.

Set-based on purpose: a bulk of 1000 orders for two endpoints is a handful of statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from orders.models import Order
from webhooks.models import Endpoint

from .models import PRIORITY, PendingOrder, SyncReason

UPSERT_BATCH = 500
# S-360 resends a failed order at every run; we do the same for its first attempts...
IMMEDIATE_RETRIES = 3
# ...then space them out, doubling from SYNC_RETRY_BACKOFF_SECONDS (30 minutes) up to
# SYNC_RETRY_MAX_BACKOFF_SECONDS (a day).


@dataclass(frozen=True)
class ChangedOrder:
    """What the outbox needs to know of an order that changed: its key, version, and the
    values endpoint filters look at."""

    order_id: int
    version: int
    order_type: str
    order_state: str
    sales_channel_code: str


@dataclass(frozen=True)
class Claimed:
    id: int
    order_id: int
    version: int
    reason: str
    attempts: int


def retry_delay(attempts: int) -> dt.timedelta:
    """Return how long an order waits after its `attempts`-th failed send."""
    if attempts <= IMMEDIATE_RETRIES:
        return dt.timedelta(0)
    first = settings.SYNC_RETRY_BACKOFF_SECONDS
    wait = min(
        first * 2 ** (attempts - IMMEDIATE_RETRIES - 1), settings.SYNC_RETRY_MAX_BACKOFF_SECONDS
    )
    return dt.timedelta(seconds=wait)


def outbox_record(
    *,
    orders: Sequence[ChangedOrder],
    reason: str = SyncReason.CHANGE,
    endpoints: Iterable[Endpoint] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Make each order pending for every endpoint whose filters accept it; return the rows.

    Called in the transaction that changed the orders. An order already pending keeps one
    row: its version moves up, a day-to-day change outranks an import, and a parked order is
    un-parked (its new version or the new request gets a fresh retry budget).
    """
    if not orders:
        return 0
    now = now or timezone.now()
    endpoints = list(Endpoint.objects.all() if endpoints is None else endpoints)
    priority = PRIORITY[SyncReason(reason)]
    rows = [
        (endpoint.pk, o.order_id, o.version, reason, priority, now, now, 0, "", None, None)
        for endpoint in endpoints
        for o in orders
        if endpoint.accepts(o.order_type, o.order_state, o.sales_channel_code)
    ]
    _upsert(rows)
    return len(rows)


_COLUMNS = (
    "endpoint_id",
    "order_id",
    "version",
    "reason",
    "priority",
    "queued_at",
    "due_at",
    "attempts",
    "last_error",
    "parked_at",
    "initial_import_id",
)


def _on_conflict(table: str) -> str:
    """What happens to an order already pending for the endpoint: one row, newest version,
    the more urgent reason, un-parked with a fresh budget, its initial import kept."""
    return (
        "ON CONFLICT (endpoint_id, order_id) DO UPDATE SET "
        f"version = CASE WHEN excluded.version > {table}.version "
        f"  THEN excluded.version ELSE {table}.version END, "
        f"reason = CASE WHEN excluded.priority <= {table}.priority "
        f"  THEN excluded.reason ELSE {table}.reason END, "
        f"priority = CASE WHEN excluded.priority < {table}.priority "
        f"  THEN excluded.priority ELSE {table}.priority END, "
        f"attempts = CASE WHEN {table}.parked_at IS NULL THEN {table}.attempts ELSE 0 END, "
        f"due_at = CASE WHEN {table}.parked_at IS NULL THEN {table}.due_at "
        "  ELSE excluded.due_at END, "
        f"last_error = CASE WHEN {table}.parked_at IS NULL THEN {table}.last_error "
        "  ELSE '' END, "
        "parked_at = NULL, "
        f"initial_import_id = COALESCE({table}.initial_import_id, excluded.initial_import_id) "
        # A row this would not change is left alone: re-flagging a million rows already
        # pending writes nothing.
        f"WHERE excluded.version > {table}.version OR excluded.priority < {table}.priority "
        f"OR {table}.parked_at IS NOT NULL "
        f"OR ({table}.initial_import_id IS NULL AND excluded.initial_import_id IS NOT NULL) "
        f"OR (excluded.priority = {table}.priority AND excluded.reason <> {table}.reason)"
    )


def _upsert(rows: list[tuple]) -> None:
    table = connection.ops.quote_name(PendingOrder._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    placeholders = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), UPSERT_BATCH):
            batch = rows[start : start + UPSERT_BATCH]
            params = [
                adapt(value) if isinstance(value, dt.datetime) else value
                for row in batch
                for value in row
            ]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608 (no user input)
                f"VALUES {', '.join([placeholders] * len(batch))} {_on_conflict(table)}",
                params,
            )


def outbox_flag(
    *,
    endpoint: Endpoint,
    orders: QuerySet[Order],
    reason: str,
    initial_import_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Make every order of `orders` (that the endpoint's filters accept) pending for the
    endpoint at its current version, in one INSERT … SELECT; return how many were flagged.

    Set-based: a million orders never pass through Python.
    """
    now = now or timezone.now()
    orders = endpoint_accepted(endpoint, orders)
    flagged = orders.count()
    if not flagged:
        return 0
    select_sql, select_params = (
        orders.order_by().values_list("order_id", "sync_version").query.sql_with_params()
    )
    table = connection.ops.quote_name(PendingOrder._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    priority = PRIORITY[SyncReason(reason)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608 (no user input)
            "SELECT %s, flagged.order_id, flagged.sync_version, %s, %s, %s, %s, 0, '', NULL, %s "
            f"FROM ({select_sql}) AS flagged WHERE true {_on_conflict(table)}",
            [endpoint.pk, reason, priority, stamp, stamp, initial_import_id, *select_params],
        )
    return flagged


def endpoint_accepted(endpoint: Endpoint, orders: QuerySet[Order]) -> QuerySet[Order]:
    """The orders that pass the endpoint's filters (order types, states, sales channels)."""
    if endpoint.filter_order_types:
        orders = orders.filter(order_type__in=endpoint.filter_order_types)
    if endpoint.filter_order_states:
        orders = orders.filter(order_state__in=endpoint.filter_order_states)
    if endpoint.filter_sales_channels:
        orders = orders.filter(sales_channel_code__in=endpoint.filter_sales_channels)
    return orders


def outbox_claim(*, endpoint: Endpoint, limit: int, now: dt.datetime) -> list[Claimed]:
    """Return up to `limit` due rows of the endpoint: changes first, then oldest due first.

    The caller holds the endpoint's lease, so no other execution claims the same rows; SKIP
    LOCKED only keeps us from waiting on an order write that is updating one of them.
    """
    query = (
        PendingOrder.objects.filter(endpoint=endpoint, parked_at__isnull=True, due_at__lte=now)
        .order_by("priority", "due_at")
        .values_list("id", "order_id", "version", "reason", "attempts")
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            query = query.select_for_update(skip_locked=True)
        return [Claimed(*row) for row in query[:limit]]


def outbox_ack(*, endpoint_id: int, delivered: dict[int, int]) -> int:
    """Remove the endpoint's rows of delivered orders whose version is not newer than the
    version delivered; an order changed mid-flight stays pending. Returns the rows removed."""
    if not delivered:
        return 0
    sent = Q()
    for order_id, version in delivered.items():
        sent |= Q(order_id=order_id, version__lte=version)
    deleted, _ = PendingOrder.objects.filter(Q(endpoint_id=endpoint_id) & sent).delete()
    return deleted


def outbox_fail(
    *,
    endpoint: Endpoint,
    claimed: Sequence[Claimed],
    sent: dict[int, int],
    error: str,
    now: dt.datetime,
) -> int:
    """Count one more failed attempt for each row whose version went out (`sent`: order id
    -> version in the payload): due again per `retry_delay`, or parked once the endpoint's
    budget is spent. A row S-360 changed since holds a version never tried: it stays due,
    its budget untouched. Returns the number parked."""
    rows = []
    parked = 0
    claims = {claim.id: claim for claim in claimed}
    with transaction.atomic():
        current = PendingOrder.objects.filter(id__in=claims)
        if connection.vendor == "postgresql":
            current = current.select_for_update()  # an order write waits for us, or we for it
        for row_id, order_id, version in current.values_list("id", "order_id", "version"):
            if order_id not in sent or version > sent[order_id]:
                continue
            attempts = claims[row_id].attempts + 1
            row = PendingOrder(id=row_id, attempts=attempts, last_error=error[:2000])
            if attempts >= endpoint.max_attempts:
                row.parked_at, row.due_at = now, now
                parked += 1
            else:
                row.parked_at, row.due_at = None, now + retry_delay(attempts)
            rows.append(row)
        PendingOrder.objects.bulk_update(rows, ["attempts", "last_error", "parked_at", "due_at"])
    return parked


def outbox_defer(*, claimed: Sequence[Claimed], until: dt.datetime) -> None:
    """Hold rows back until `until` without counting an attempt (the CRM asked us to wait)."""
    PendingOrder.objects.filter(id__in=[c.id for c in claimed]).update(due_at=until)


def outbox_replay(*, pending: QuerySet[PendingOrder], now: dt.datetime | None = None) -> int:
    """Give the parked rows among `pending` a fresh retry budget, due at the next execution.
    Returns how many were replayed."""
    return pending.filter(parked_at__isnull=False).update(
        parked_at=None, attempts=0, last_error="", due_at=now or timezone.now()
    )
