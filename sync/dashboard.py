"""What the admin home shows: each endpoint's health and backlog, and a week of deliveries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from webhooks.models import Endpoint

from .models import PendingOrder, RunStatus, SyncRun


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: Endpoint
    state: str  # healthy, failing, paused, disabled
    pending: int
    parked: int
    lag: dt.timedelta | None  # age of the oldest pending change
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None


@dataclass(frozen=True)
class Bar:
    label: str
    delivered: int
    failed: int


def endpoint_health() -> list[EndpointHealth]:
    """One row per endpoint, in three queries whatever the number of endpoints."""
    now = timezone.now()
    backlog = {
        row["endpoint_id"]: row
        for row in PendingOrder.objects.values("endpoint_id").annotate(
            pending=Count("id", filter=Q(parked_at__isnull=True)),
            parked=Count("id", filter=Q(parked_at__isnull=False)),
            oldest=Min("queued_at", filter=Q(parked_at__isnull=True)),
        )
    }
    last_status = {}
    for endpoint_id, status in (
        SyncRun.objects.exclude(status=RunStatus.RUNNING)
        .order_by("endpoint_id", "-started_at")
        .values_list("endpoint_id", "status")
    ):
        last_status.setdefault(endpoint_id, status)
    rows = []
    for endpoint in Endpoint.objects.order_by("name"):
        counts = backlog.get(endpoint.pk, {})
        if endpoint.disabled_reason:
            state = "disabled"
        elif not endpoint.is_active:
            state = "paused"
        elif last_status.get(endpoint.pk) in (RunStatus.FAILED, RunStatus.PARTIAL):
            state = "failing"
        else:
            state = "healthy"
        oldest = counts.get("oldest")
        rows.append(
            EndpointHealth(
                endpoint=endpoint,
                state=state,
                pending=counts.get("pending", 0),
                parked=counts.get("parked", 0),
                lag=now - oldest if oldest else None,
                last_run_at=endpoint.last_run_at,
                next_run_at=endpoint.next_sync_at,
            )
        )
    return rows


def delivery_bars(*, days: int) -> list[Bar]:
    """Orders delivered and failed per hour (1 day) or per day (more), oldest first."""
    now = timezone.now()
    hourly = days == 1
    start = now - dt.timedelta(days=days)
    trunc = TruncHour if hourly else TruncDay
    sums = {
        row["bucket"]: row
        for row in SyncRun.objects.filter(started_at__gte=start)
        .annotate(bucket=trunc("started_at"))
        .values("bucket")
        .annotate(delivered=Sum("orders_delivered"), failed=Sum("orders_failed"))
    }
    step = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
    bucket = now - dt.timedelta(hours=23) if hourly else now - dt.timedelta(days=days - 1)
    bucket = bucket.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        bucket = bucket.replace(hour=0)
    bars = []
    while bucket <= now:
        row = sums.get(bucket, {})
        label = f"{bucket:%H}h" if hourly else f"{bucket:%a %d}"
        bars.append(Bar(label, row.get("delivered") or 0, row.get("failed") or 0))
        bucket += step
    return bars


@dataclass(frozen=True)
class ChartBar:
    """A bar pair in a 100-high SVG: x of the pair, heights of delivered and failed."""

    label: str
    delivered: int
    failed: int
    x: int
    delivered_height: float
    failed_height: float


@dataclass(frozen=True)
class Chart:
    title: str
    peak: int
    width: int
    bars: list[ChartBar]


def chart(title: str, bars: list[Bar]) -> Chart:
    peak = max([1, *(max(b.delivered, b.failed) for b in bars)])
    return Chart(
        title=title,
        peak=peak,
        width=10 * len(bars),
        bars=[
            ChartBar(
                b.label,
                b.delivered,
                b.failed,
                10 * i,
                round(100 * b.delivered / peak, 1),
                round(100 * b.failed / peak, 1),
            )
            for i, b in enumerate(bars)
        ],
    )


def dashboard() -> dict:
    """The admin home's context: endpoint health and two delivery charts."""
    return {
        "endpoints": endpoint_health(),
        "charts": [
            chart("Orders in the last 24 hours", delivery_bars(days=1)),
            chart("Orders in the last 7 days", delivery_bars(days=7)),
        ],
    }
