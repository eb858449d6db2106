"""Reads of orders: the API list, a single order, and the S-360 flat-file export rows."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from .models import Order, format_thousandths

EXPORT_COLUMNS = (
    "ORDER_ID",
    "ORDER_STATE",
    "ORDER_TYPE",
    "ORDER_ORIGINATOR",
    "CONTACT_NUMBER",
    "SALES_CHANNEL_CODE",
    "CURRENCY",
    "SALE_AMOUNT",
    "CREATION_DATE",
    "LAST_MOD_DATE",
    "SYNC_VERSION",
)
_EXPORT_FIELDS = (
    "order_id",
    "order_state",
    "order_type",
    "order_originator",
    "contact_reference",
    "sales_channel_code",
    "currency_code",
    "sale_amount",
    "currency_fraction_digit",
    "creation_date_time",
    "last_mod_date_time",
    "sync_version",
)
# Rows fetched per round trip: big enough to amortize it, small enough to keep memory flat.
EXPORT_CHUNK = 5000


def order_list() -> QuerySet[Order]:
    """Orders with their operations and movements, newest first."""
    return Order.objects.prefetch_related("operations", "movements")


def order_export_rows(*, orders: QuerySet[Order] | None = None) -> Iterator[tuple[object, ...]]:
    """Yield the S-360 flat-file rows (EXPORT_COLUMNS order) of the given orders, by orderId.

    One query, streamed: PostgreSQL uses a server-side cursor, SQLite a lazy cursor.
    """
    queryset = Order.objects.all() if orders is None else orders
    rows = queryset.order_by("order_id").values_list(*_EXPORT_FIELDS)
    for (
        order_id,
        state,
        order_type,
        originator,
        contact,
        channel,
        currency,
        sale_amount,
        fraction_digits,
        created,
        modified,
        version,
    ) in rows.iterator(chunk_size=EXPORT_CHUNK):
        yield (
            order_id,
            state,
            order_type,
            originator,
            contact,
            channel,
            currency,
            format_thousandths(sale_amount, fraction_digits),
            created.isoformat(),
            modified.isoformat(),
            version,
        )
