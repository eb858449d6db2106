"""The admin home: each endpoint's state, backlog, lag, parked; delivered vs failed charts."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sync.models import PendingOrder, SyncRun
from tests.factories import create_orders
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db


def make(name, **fields):
    return endpoint_create(data={"name": name, "url": f"http://127.0.0.1:9/{name}", **fields})[0]


def test_the_home_page_shows_each_endpoints_state_backlog_and_lag(admin_client_logged):
    healthy = make("healthy")
    failing = make("failing")
    make("paused", is_active=False)
    disabled = make("gone")
    disabled.disabled_reason = "410"
    disabled.save()
    create_orders(3)
    PendingOrder.objects.filter(endpoint=healthy).update(
        queued_at=timezone.now() - dt.timedelta(minutes=42)
    )
    PendingOrder.objects.filter(endpoint=failing).filter(
        pk=PendingOrder.objects.filter(endpoint=failing).first().pk
    ).update(parked_at=timezone.now())
    now = timezone.now()
    SyncRun.objects.create(
        endpoint=healthy,
        trigger="SCHEDULE",
        status="SUCCEEDED",
        started_at=now,
        orders_delivered=30,
    )
    SyncRun.objects.create(
        endpoint=failing, trigger="SCHEDULE", status="FAILED", started_at=now, orders_failed=7
    )
    html = admin_client_logged.get("/admin/").content.decode()
    for state in ("healthy", "failing", "paused", "disabled"):
        assert f'state-{state}">{state}<' in html
    rows = {
        row.endpoint.name: row
        for row in admin_client_logged.get("/admin/").context["dashboard"]["endpoints"]
    }
    assert (rows["healthy"].pending, rows["failing"].parked) == (3, 1)
    assert dt.timedelta(minutes=41) < rows["healthy"].lag < dt.timedelta(minutes=44)
    assert "peak 30 orders" in html
    assert html.count('class="bar-delivered"') == 24 + 7


def test_the_home_page_costs_the_same_queries_for_2_or_8_endpoints(admin_client_logged):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            admin_client_logged.get("/admin/")
        return len(captured)

    for i in range(2):
        make(f"e{i}")
    few = queries()
    for i in range(2, 8):
        make(f"e{i}")
    assert queries() == few
