"""Prometheus metrics, read from the database at scrape time: every worker's work counts,
whichever process serves /metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from webhooks.models import Endpoint

from .models import PendingOrder, SyncRun

WINDOW = dt.timedelta(hours=24)


class SyncCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = timezone.now()
        names = dict(Endpoint.objects.values_list("pk", "name"))
        backlog = GaugeMetricFamily(
            "s360_sync_backlog_orders", "Orders waiting to be sent", labels=["endpoint"]
        )
        parked = GaugeMetricFamily(
            "s360_sync_parked_orders", "Orders parked after their retry budget", labels=["endpoint"]
        )
        lag = GaugeMetricFamily(
            "s360_sync_lag_seconds", "Age of the oldest pending change", labels=["endpoint"]
        )
        rows = PendingOrder.objects.values("endpoint_id").annotate(
            pending=Count("id", filter=Q(parked_at__isnull=True)),
            parked=Count("id", filter=Q(parked_at__isnull=False)),
            oldest=Min("queued_at", filter=Q(parked_at__isnull=True)),
        )
        seen = set()
        for row in rows:
            label = [names.get(row["endpoint_id"], str(row["endpoint_id"]))]
            seen.add(row["endpoint_id"])
            backlog.add_metric(label, row["pending"])
            parked.add_metric(label, row["parked"])
            oldest = row["oldest"]
            lag.add_metric(label, (now - oldest).total_seconds() if oldest else 0)
        for pk, name in names.items():
            if pk not in seen:
                backlog.add_metric([name], 0)
                parked.add_metric([name], 0)
                lag.add_metric([name], 0)
        yield from (backlog, parked, lag)

        runs = GaugeMetricFamily(
            "s360_sync_executions_24h", "Executions in the last 24 h", labels=["endpoint", "status"]
        )
        sent = GaugeMetricFamily(
            "s360_sync_orders_24h",
            "Orders delivered and failed in the last 24 h",
            labels=["endpoint", "outcome"],
        )
        recent = (
            SyncRun.objects.filter(started_at__gte=now - WINDOW)
            .values("endpoint_id", "status")
            .annotate(n=Count("id"), delivered=Sum("orders_delivered"), failed=Sum("orders_failed"))
        )
        totals: dict[int, list[int]] = {}
        for row in recent:
            name = names.get(row["endpoint_id"], str(row["endpoint_id"]))
            runs.add_metric([name, row["status"]], row["n"])
            total = totals.setdefault(row["endpoint_id"], [0, 0])
            total[0] += row["delivered"] or 0
            total[1] += row["failed"] or 0
        for pk, (delivered, failed) in totals.items():
            sent.add_metric([names.get(pk, str(pk)), "delivered"], delivered)
            sent.add_metric([names.get(pk, str(pk)), "failed"], failed)
        yield from (runs, sent)
