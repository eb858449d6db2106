"""The README's run command, for real: it starts web, worker and beat on the embedded default
(SQLite + the filesystem broker), serves the admin login, the seeded orders reach the demo CRM,
and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # not up yet
            pass
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}; log tail:\n{log.read_text()[-3000:]}")


def test_bin_run_serves_the_admin_and_the_demo_orders_reach_the_demo_crm(tmp_path):
    port = free_port()
    database = tmp_path / "db.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env |= {
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "ADMIN_CREDENTIALS_FILE": str(tmp_path / "admin-credentials.txt"),
    }
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        ["bin/run"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        login = f"http://127.0.0.1:{port}/admin/login/"
        wait_for(
            lambda: urllib.request.urlopen(login, timeout=2).status == 200,
            180,
            "the admin login page",
            log,
        )
        assert "password" in log.read_text()
        password = (tmp_path / "admin-credentials.txt").read_text().split()[1]
        assert password in log.read_text()

        def crm_orders() -> int:
            with sqlite3.connect(database, timeout=5) as db:
                return db.execute("SELECT count(*) FROM democrm_crmorder").fetchone()[0]

        wait_for(lambda: crm_orders() == 500, 90, "the 500 demo orders in the demo CRM", log)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"bin/run did not stop on Ctrl-C:\n{log.read_text()[-2000:]}")
    time.sleep(1)
    leftovers = subprocess.run(
        ["pgrep", "-g", str(process.pid)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", "processes left running after Ctrl-C"
