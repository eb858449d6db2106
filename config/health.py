"""GET /health/: database, broker and beat, for load balancers and monitoring. No login:
it says whether each part answers, nothing more."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Beat sends the dispatcher every minute: three missed ticks mean it is not running.
BEAT_STALE_SECONDS = 180


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check() or {}
        ok = detail.pop("ok", True)
    except Exception as error:  # any failure of a dependency is a "no", never a 500
        ok, detail = False, {"error": f"{type(error).__name__}: {error}"[:200]}
    return {"ok": ok, "ms": round((time.monotonic() - started) * 1000, 1), **detail}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _beat() -> dict:
    from django_celery_beat.models import PeriodicTask

    from sync.tasks import DISPATCHER_TASK

    last = (
        PeriodicTask.objects.filter(task=DISPATCHER_TASK)
        .values_list("last_run_at", flat=True)
        .first()
    )
    if last is None:
        return {"ok": False, "lastSeen": None}
    age = (timezone.now() - last).total_seconds()
    return {"ok": age < BEAT_STALE_SECONDS, "lastSeen": last.isoformat()}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(_database), "broker": _timed(_broker), "beat": _timed(_beat)}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )
