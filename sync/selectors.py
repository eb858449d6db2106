"""Reads of sync state: backlogs, parked orders, executions."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from webhooks.models import Endpoint

from .models import PendingOrder, SyncRun


def endpoints_with_backlog() -> QuerySet[Endpoint]:
    """Endpoints annotated with `pending_count` (not parked) and `parked_count`."""
    return Endpoint.objects.annotate(
        pending_count=Count("pending", filter=Q(pending__parked_at__isnull=True)),
        parked_count=Count("pending", filter=Q(pending__parked_at__isnull=False)),
    )


def parked_orders(*, endpoint_id: int | None = None) -> QuerySet[PendingOrder]:
    query = PendingOrder.objects.filter(parked_at__isnull=False).select_related("endpoint")
    if endpoint_id is not None:
        query = query.filter(endpoint_id=endpoint_id)
    return query.order_by("-parked_at", "-id")


def runs_with_deliveries() -> QuerySet[SyncRun]:
    return SyncRun.objects.prefetch_related("deliveries")
