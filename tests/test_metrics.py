"""GET /metrics: backlog, parked, lag per endpoint, executions and orders of the last 24 h."""

import datetime as dt

import pytest
from django.utils import timezone

from sync.models import PendingOrder, SyncRun
from tests.factories import create_orders
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db


def test_metrics_report_the_sync_state_per_endpoint(client):
    endpoint, _ = endpoint_create(data={"name": "Main CRM", "url": "http://127.0.0.1:9/h"})
    orders = create_orders(3)
    endpoint_create(data={"name": "Idle CRM", "url": "http://127.0.0.1:9/i"})  # owes nothing
    PendingOrder.objects.filter(order_id=orders[0]["order_id"]).update(parked_at=timezone.now())
    PendingOrder.objects.filter(endpoint=endpoint).update(
        queued_at=timezone.now() - dt.timedelta(minutes=10)
    )
    SyncRun.objects.create(
        endpoint=endpoint,
        trigger="SCHEDULE",
        status="SUCCEEDED",
        started_at=timezone.now(),
        orders_delivered=40,
        orders_failed=2,
    )
    text = client.get("/metrics").content.decode()
    assert 's360_sync_backlog_orders{endpoint="Main CRM"} 2.0' in text
    assert 's360_sync_parked_orders{endpoint="Main CRM"} 1.0' in text
    assert 's360_sync_backlog_orders{endpoint="Idle CRM"} 0.0' in text
    lag = next(
        line
        for line in text.splitlines()
        if line.startswith('s360_sync_lag_seconds{endpoint="Main CRM"}')
    )
    assert 590 < float(lag.split()[-1]) < 700
    assert 's360_sync_executions_24h{endpoint="Main CRM",status="SUCCEEDED"} 1.0' in text
    assert 's360_sync_orders_24h{endpoint="Main CRM",outcome="delivered"} 40.0' in text
    assert 's360_sync_orders_24h{endpoint="Main CRM",outcome="failed"} 2.0' in text


def test_metrics_ask_for_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert ok.status_code == 200 and "s360_sync_backlog_orders" in ok.content.decode()
