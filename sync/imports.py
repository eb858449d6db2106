"""Initial imports: support staff flag older orders for one endpoint; the backlog then drains
through the normal executions, after the day-to-day changes (priority 1 in the outbox)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from orders.models import Order
from webhooks.models import Endpoint

from . import outbox
from .models import InitialImport, PendingOrder, SyncReason


@dataclass(frozen=True)
class Estimate:
    """How many orders a timeframe holds for an endpoint, and when they will have gone out."""

    orders: int
    backlog: int  # what the endpoint already has pending, served first or alongside
    executions: int
    eta: dt.datetime | None


@dataclass(frozen=True)
class Progress:
    flagged: int
    queued: int
    delivered: int
    pending: int
    parked: int
    removed: int
    eta: dt.datetime | None
    state: str  # "in progress", "done", "done, some parked", "cancelled"

    @property
    def percent(self) -> int:
        """Share of what this import queued that has been delivered (or given up on)."""
        if not self.queued:
            return 100
        return int(100 * (self.queued - self.pending) / self.queued)


def timeframe_orders(
    *,
    created_from: dt.datetime,
    created_to: dt.datetime,
    order_types: Sequence[str] = (),
    order_states: Sequence[str] = (),
    sales_channels: Sequence[str] = (),
) -> QuerySet[Order]:
    """Orders created in [created_from, created_to) with the optional filters."""
    orders = Order.objects.filter(
        creation_date_time__gte=created_from, creation_date_time__lt=created_to
    )
    if order_types:
        orders = orders.filter(order_type__in=order_types)
    if order_states:
        orders = orders.filter(order_state__in=order_states)
    if sales_channels:
        orders = orders.filter(sales_channel_code__in=sales_channels)
    return orders


def _eta(endpoint: Endpoint, pending: int, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Executions needed for `pending` orders at the endpoint's cap, and when the last ends."""
    if pending <= 0:
        return 0, None
    executions = math.ceil(pending / endpoint.max_orders_per_run)
    first = max(endpoint.next_sync_at or now, now)
    return executions, first + dt.timedelta(minutes=endpoint.frequency_minutes * (executions - 1))


def _backlog(endpoint: Endpoint) -> int:
    return PendingOrder.objects.filter(endpoint=endpoint, parked_at__isnull=True).count()


def initial_import_estimate(*, endpoint: Endpoint, orders: QuerySet[Order]) -> Estimate:
    """Preview: the orders an import would flag, and an ETA from the cap and the frequency
    (assuming no new day-to-day changes, which go first)."""
    count = outbox.endpoint_accepted(endpoint, orders).count()
    backlog = _backlog(endpoint)
    executions, eta = _eta(endpoint, backlog + count, timezone.now())
    return Estimate(count, backlog, executions, eta)


def _check(endpoint: Endpoint) -> None:
    if not endpoint.is_active:
        raise ValidationError(
            {"endpoint": [f"{endpoint} is paused or disabled: resume it before an import."]}
        )


def initial_import_create(
    *,
    endpoint: Endpoint,
    created_from: dt.datetime,
    created_to: dt.datetime,
    order_types: Sequence[str] = (),
    order_states: Sequence[str] = (),
    sales_channels: Sequence[str] = (),
    requested_by: object | None = None,
) -> InitialImport:
    """Flag every order created in [created_from, created_to) for the endpoint.

    An order already pending keeps its one row (no duplicate sends); overlapping imports are
    allowed. An empty timeframe is refused, with nothing flagged.
    """
    _check(endpoint)
    if created_from >= created_to:
        raise ValidationError({"createdTo": ["Must be after createdFrom."]})
    orders = timeframe_orders(
        created_from=created_from,
        created_to=created_to,
        order_types=order_types,
        order_states=order_states,
        sales_channels=sales_channels,
    )
    return _flag(
        endpoint=endpoint,
        orders=orders,
        requested_by=requested_by,
        fields={
            "created_from": created_from,
            "created_to": created_to,
            "filter_order_types": list(order_types),
            "filter_order_states": list(order_states),
            "filter_sales_channels": list(sales_channels),
            "description": f"created {created_from:%Y-%m-%d %H:%M} to {created_to:%Y-%m-%d %H:%M}",
        },
    )


def initial_import_flag_selection(
    *, endpoint: Endpoint, orders: QuerySet[Order], requested_by: object | None = None
) -> InitialImport:
    """Flag a selection of orders (the order admin's action) for the endpoint."""
    _check(endpoint)
    return _flag(
        endpoint=endpoint,
        orders=orders,
        requested_by=requested_by,
        fields={"description": "selected in the order admin"},
    )


def _flag(
    *, endpoint: Endpoint, orders: QuerySet[Order], requested_by: object | None, fields: dict
) -> InitialImport:
    with transaction.atomic():
        record = InitialImport.objects.create(
            endpoint=endpoint,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            requested_at=timezone.now(),
            **fields,
        )
        flagged = outbox.outbox_flag(
            endpoint=endpoint,
            orders=orders,
            reason=SyncReason.INITIAL_IMPORT,
            initial_import_id=record.pk,
        )
        if not flagged:
            # Say so and flag nothing: roll the record back with the (empty) flagging.
            raise ValidationError({"createdFrom": ["No order matches: nothing was flagged."]})
        record.flagged = flagged
        record.queued = PendingOrder.objects.filter(initial_import=record).count()
        record.save(update_fields=["flagged", "queued"])
    return record


def initial_import_cancel(*, initial_import: InitialImport) -> int:
    """Remove what the import queued and is not yet sent; return how many were removed.

    Rows that have become day-to-day changes since stay: those are real changes to send.
    """
    with transaction.atomic():
        record = InitialImport.objects.select_for_update().get(pk=initial_import.pk)
        if record.status == InitialImport.Status.CANCELLED:
            return 0
        removed, _ = PendingOrder.objects.filter(
            initial_import=record, reason=SyncReason.INITIAL_IMPORT
        ).delete()
        record.status = InitialImport.Status.CANCELLED
        record.cancelled_at = timezone.now()
        record.removed = removed
        record.save(update_fields=["status", "cancelled_at", "removed"])
    initial_import.refresh_from_db()
    return removed


def imports_with_counts() -> QuerySet[InitialImport]:
    """Imports annotated with `pending_count` and `parked_count` (one query for a list)."""
    return InitialImport.objects.select_related("endpoint", "requested_by").annotate(
        pending_count=Count("pending", filter=Q(pending__parked_at__isnull=True)),
        parked_count=Count("pending", filter=Q(pending__parked_at__isnull=False)),
    )


def initial_import_progress(initial_import: InitialImport, *, with_eta: bool = True) -> Progress:
    """Flagged, delivered, pending, parked and an ETA, from the outbox rows it tracks.

    `with_eta=False` skips the ETA (a count over the endpoint's backlog), for lists."""
    record = initial_import
    pending = getattr(record, "pending_count", None)
    parked = getattr(record, "parked_count", None)
    if pending is None or parked is None:
        counts = PendingOrder.objects.filter(initial_import=record).aggregate(
            pending=Count("id", filter=Q(parked_at__isnull=True)),
            parked=Count("id", filter=Q(parked_at__isnull=False)),
        )
        pending, parked = counts["pending"], counts["parked"]
    delivered = max(record.queued - pending - parked - record.removed, 0)
    eta = None
    if record.status == InitialImport.Status.CANCELLED:
        state = "cancelled"
    elif pending:
        state = "in progress"
        if with_eta:
            _, eta = _eta(record.endpoint, _backlog(record.endpoint), timezone.now())
    else:
        state = "done, some parked" if parked else "done"
    return Progress(
        flagged=record.flagged,
        queued=record.queued,
        delivered=delivered,
        pending=pending,
        parked=parked,
        removed=record.removed,
        eta=eta,
        state=state,
    )
