"""End to end: a real Celery beat and worker on Redis push an order change to the CRM, with
no call from the test. Runs on PostgreSQL (the worker needs the test database from another
process); CI runs it there."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from pathlib import Path

import pytest
from django.db import connection  # noqa: F401 (read by the skipif below)
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from orders.services import order_upsert
from sync.models import Delivery
from tests import chaos
from tests.factories import create_orders
from webhooks.services import endpoint_create

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/14"


pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL"),
    pytest.mark.skipif(chaos.NO_REDIS, reason="needs Redis on 127.0.0.1:6379"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def ensure_dispatcher_schedule() -> None:
    """The migration creates it; a transactional test's flush may have removed it since.
    Its last run a while ago makes beat send it at once instead of a minute after start."""
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name="sync: dispatch due endpoints (every minute)",
        defaults={
            "task": "sync.tasks.dispatch_due_endpoints",
            "interval": every_minute,
            "enabled": True,
            "last_run_at": timezone.now() - dt.timedelta(minutes=5),
        },
    )


def start(args: list[str], log: Path) -> subprocess.Popen:
    """Celery with production's timeouts, on this test's own Redis database."""
    return chaos.celery(args, log, broker_url=REDIS_URL, settings={})


def test_beat_and_a_worker_push_a_change_to_the_crm_unprompted(client, httpserver, tmp_path):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    ensure_dispatcher_schedule()
    endpoint, secret = endpoint_create(
        data={"name": "CRM", "url": httpserver.url_for("/hook"), "frequency_minutes": 1}
    )
    received: list[dict] = []
    arrived = threading.Event()

    def crm(request: Request) -> Response:
        received.append(
            Webhook(secret).verify(request.get_data(as_text=True), dict(request.headers))
        )
        arrived.set()
        return Response("{}", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(crm)
    (data,) = create_orders(1)
    order_upsert(data={**data, "order_state": "CANCELLED", "last_mod_date_time": None})

    worker = start(["worker", "--pool", "solo", "--loglevel", "INFO"], tmp_path / "worker.log")
    beat = start(
        ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")],
        tmp_path / "beat.log",
    )
    try:
        delivered = arrived.wait(timeout=90)
        # While beat runs, its record of the tick is fresh: /health/ counts on it.
        health = client.get("/health/").json()
    finally:
        for process in (beat, worker):
            process.terminate()
        for process in (beat, worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    logs = "\n".join((tmp_path / f).read_text()[-3000:] for f in ("beat.log", "worker.log"))
    assert delivered, logs
    (entry,) = received[0]["orders"]
    assert entry["orderDetailsData"]["orderId"] == data["order_id"]
    assert entry["syncVersion"] == 2
    assert entry["orderDetailsData"]["orderState"] == "CANCELLED"
    assert Delivery.objects.filter(endpoint=endpoint, ok=True).exists()
    assert health["beat"]["ok"], health
    assert dt.datetime.fromisoformat(health["beat"]["lastSeen"]) > timezone.now() - dt.timedelta(
        seconds=30
    )
