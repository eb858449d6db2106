"""Tools of the fault-injection suite (tests/test_chaos.py): a CRM that misbehaves on purpose,
real Celery processes, and the checks made from what was recorded on both sides."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from django.db import connection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

ROOT = Path(__file__).resolve().parent.parent
# A Redis database of the suite's own (flushed at start); another one for a run beside it.
REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/13")

# What the workers run with: short enough for a suite, the same code paths as production.
WORKER_SETTINGS = {
    "WEBHOOK_TIMEOUT_SECONDS": "1.5",
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
    "SYNC_LEASE_SECONDS": "8",
    "SYNC_RETRY_BACKOFF_SECONDS": "1",
    "SYNC_RETRY_MAX_BACKOFF_SECONDS": "4",
}
TIMEOUT = float(WORKER_SETTINGS["WEBHOOK_TIMEOUT_SECONDS"])

# How often the CRM misbehaves, by kind, while faults are on; the rest is a prompt 200.
FAULTS = {
    "http_500": 0.12,
    "timeout": 0.06,  # answers after our deadline, having applied the payload: a duplicate
    "reset": 0.10,  # the connection is reset (RST) before any answer
    "http_429": 0.07,  # Retry-After: 1 or 2 seconds
    "slow": 0.10,  # 0.2 to 0.8 s, then 200
}


def redis_up(url: str = REDIS_URL) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


# Skipped without Redis on a developer's machine; in CI a missing Redis is a failure.
NO_REDIS = not os.environ.get("CI") and not redis_up()


def database_url() -> str:
    """The test database, for processes started by the test (workers, beat)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Received:
    path: str
    run_id: int | None
    orders: int
    started: float
    outcome: str


@dataclass
class Side:
    """What one endpoint's CRM holds: orderId -> (syncVersion, orderDetailsData)."""

    secret: str
    held: dict[int, tuple[int, dict]] = field(default_factory=dict)
    applied: Counter = field(default_factory=Counter)  # (orderId, version) -> times applied


class ChaosCRM:
    """A real HTTP CRM on loopback: verifies every signature, applies payloads the way the
    reference receiver does (a version not newer than the one held is ignored), and while
    `faults_on` answers with a random fault drawn from FAULTS (seeded, so a failing run can
    be replayed)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.sides: dict[str, Side] = {}
        self.faults: Counter = Counter()
        self.received: list[Received] = []
        self.bad_signatures = 0
        # Retry-After: until when (monotonic) each path asked to be left alone, and the
        # payloads that arrived before that (there must be none).
        self.wait_until: dict[str, float] = {}
        self.inside_retry_after: list[Received] = []
        self.faults_on = True
        self.latency = 0.0  # seconds before every prompt answer
        crm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                crm.handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                # A connection we reset on purpose, or one the sender gave up on.
                if not isinstance(sys.exc_info()[1], ValueError | OSError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _draw(self) -> str:
        with self.lock:
            if not self.faults_on:
                return "ok"
            roll = self.random.random()
        for kind, share in FAULTS.items():
            if roll < share:
                return kind
            roll -= share
        return "ok"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        body = request.rfile.read(int(request.headers.get("content-length", 0)))
        side = self.sides[request.path]
        try:
            payload = Webhook(side.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            self._answer(request, 401)
            return
        outcome = self._draw()
        received = Received(
            request.path, payload["runId"], len(payload["orders"]), started, outcome
        )
        with self.lock:
            self.received.append(received)
            if started < self.wait_until.get(request.path, 0):
                self.inside_retry_after.append(received)
            if outcome != "ok":
                self.faults[outcome] += 1
        if outcome == "http_500":
            self._answer(request, 500)
        elif outcome == "http_429":
            wait = self.random.choice((1, 2))
            with self.lock:  # stamped before the answer leaves, so the sender's wait ends later
                self.wait_until[request.path] = time.monotonic() + wait
            self._answer(request, 429, {"retry-after": str(wait)})
        elif outcome == "reset":
            # SO_LINGER with a zero timeout: closing sends RST instead of FIN. The file
            # objects hold the descriptor too; all must go for the close to happen now.
            request.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            request.rfile.close()
            request.wfile.close()
            request.connection.close()
            request.close_connection = True
        elif outcome == "timeout":
            self._apply(side, payload)
            time.sleep(TIMEOUT + 0.5)
            self._answer(request, 200)
        else:
            if outcome == "slow":
                time.sleep(self.random.uniform(0.2, 0.8))
            time.sleep(self.latency)
            self._apply(side, payload)
            self._answer(request, 200)

    def _apply(self, side: Side, payload: dict) -> None:
        with self.lock:
            for entry in payload["orders"]:
                details, version = entry["orderDetailsData"], entry["syncVersion"]
                side.applied[(details["orderId"], version)] += 1
                held = side.held.get(details["orderId"])
                if held is None or version > held[0]:
                    side.held[details["orderId"]] = (version, details)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, headers: dict | None = None):
        try:
            request.send_response(status)
            for name, value in (headers or {}).items():
                request.send_header(name, value)
            request.send_header("content-type", "application/json")
            request.send_header("content-length", "2")
            request.end_headers()
            request.wfile.write(b"{}")
        except OSError:
            request.close_connection = True  # the sender gave up (our deadline): fine


def celery(
    args: list[str],
    log: Path,
    *,
    broker_url: str = REDIS_URL,
    settings: dict[str, str] = WORKER_SETTINGS,
    **extra_env: str,
) -> subprocess.Popen:
    """Start `celery -A config …` on the test database and a Redis database (the suite's
    own by default), with the suite's short timeouts unless `settings` says otherwise."""
    env = {
        **os.environ,
        **settings,
        **extra_env,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def worker(name: str, log_dir: Path) -> subprocess.Popen:
    return celery(
        [
            "worker",
            "--pool",
            "solo",
            "-n",
            f"{name}@chaos",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        log_dir / f"{name}.log",
    )


def beat(name: str, log_dir: Path) -> subprocess.Popen:
    return celery(
        ["beat", "--loglevel", "INFO", "--schedule", str(log_dir / f"{name}-schedule")],
        log_dir / f"{name}.log",
    )


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def logs_tail(log_dir: Path, chars: int = 2500) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-chars:]}" for log in sorted(log_dir.glob("*.log"))
    )


def dispatch_every_second() -> None:
    """The dispatcher, ticking every second instead of every minute, its last run long ago
    so beat sends it at once. (The migration creates it; a transactional test's flush may
    have removed it since.)"""
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from sync.tasks import DISPATCHER_TASK

    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.filter(task=DISPATCHER_TASK).delete()
    PeriodicTask.objects.create(
        name="sync: dispatch due endpoints (chaos: every second)",
        task=DISPATCHER_TASK,
        interval=every_second,
        last_run_at=timezone.now() - dt.timedelta(minutes=5),
    )


def overlapping(intervals: list[tuple[object, dt.datetime, dt.datetime]]) -> list[tuple]:
    """Every pair of (key, start, end) intervals that overlap."""
    found = []
    ordered = sorted(intervals, key=lambda i: i[1])
    for index, before in enumerate(ordered):
        for after in ordered[index + 1 :]:
            if after[1] >= before[2]:
                break  # this one and all later ones start after `before` ended
            found.append((before, after))
    return found


def write_report(report: dict) -> None:
    """Print the figures; also append them to CHAOS_REPORT when set (for docs/reliability.md)."""
    line = json.dumps(report, default=str)
    print(f"\nCHAOS {line}")
    if path := os.environ.get("CHAOS_REPORT"):
        with open(path, "a") as out:
            out.write(line + "\n")
