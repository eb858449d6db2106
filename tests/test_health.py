"""GET /health/ answers for the database, the broker and beat."""

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatcher(db):
    from importlib import import_module

    from django.apps import apps

    import_module("sync.migrations.0002_dispatcher_schedule").create_schedule(apps, None)
    return PeriodicTask.objects.get(task="sync.tasks.dispatch_due_endpoints")


def test_healthy_when_database_broker_and_beat_answer(client, dispatcher):
    dispatcher.last_run_at = timezone.now() - dt.timedelta(seconds=30)
    dispatcher.save()
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["beat"]["ok"]


def test_degraded_with_503_when_beat_stopped(client, dispatcher):
    PeriodicTask.objects.filter(pk=dispatcher.pk).update(
        last_run_at=timezone.now() - dt.timedelta(minutes=10)
    )
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["beat"]["ok"] is False


def test_degraded_when_the_broker_is_unreachable(client, dispatcher, monkeypatch):
    # Celery reads these before its configuration; setting the configuration instead would
    # leave the derived URL stored in it after the test (and later tests on it).
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:1/0")
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert "error" in response.json()["broker"]
