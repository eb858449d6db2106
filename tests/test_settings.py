"""The embedded default (SQLite in WAL mode, filesystem broker, database beat schedule) and the
production settings, each checked in a fresh `manage.py` process so the test settings do not
leak in."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
INHERITED = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "CELERY_BROKER_DIR")


def manage(
    *args: str, env: dict[str, str], drop: tuple[str, ...] = (), timeout: int = 120
) -> subprocess.CompletedProcess:
    """Run `manage.py <args>` in the project with exactly the given overrides (and without the
    inherited variables, nor those in `drop`)."""
    clean = {k: v for k, v in os.environ.items() if k not in INHERITED + drop}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict[str, str]:
    """The environment of the embedded mode, on a migrated SQLite file of its own."""
    tmp = tmp_path_factory.mktemp("embedded")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'x.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "CELERY_BROKER_DIR": str(tmp / "broker"),
    }
    result = manage("migrate", "--no-input", env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return env


def shell(code: str, env: dict[str, str]) -> str:
    """Run Python in `manage.py shell` and return its last line of output."""
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_embedded_sqlite_runs_in_wal_mode(embedded):
    """The embedded SQLite database runs in WAL journal mode."""
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA journal_mode')\n"
        "    print(c.fetchone()[0])"
    )
    assert shell(code, embedded).lower() == "wal"


def test_embedded_sqlite_file_is_the_configured_one(embedded):
    """The embedded mode uses the file named by DATABASE_URL, migrated."""
    code = (
        "from django.db import connection\n"
        "from orders.models import Order\n"
        "print(connection.settings_dict['NAME'], Order.objects.count())"
    )
    name, count = shell(code, embedded).rsplit(" ", 1)
    assert name == embedded["DATABASE_URL"].removeprefix("sqlite:///")
    assert count == "0"


def test_embedded_sqlite_begins_immediate_transactions(embedded):
    """SQLite transactions take the write lock at BEGIN (transaction_mode IMMEDIATE)."""
    code = (
        "from django.conf import settings\n"
        "print(settings.DATABASES['default']['OPTIONS']['transaction_mode'])"
    )
    assert shell(code, embedded) == "IMMEDIATE"


def test_embedded_sqlite_enforces_foreign_keys_and_waits_for_locks(embedded):
    """SQLite connections enforce foreign keys and wait 30 s for a busy database."""
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA foreign_keys')\n"
        "    fk = c.fetchone()[0]\n"
        "    c.execute('PRAGMA busy_timeout')\n"
        "    print(fk, c.fetchone()[0])"
    )
    assert shell(code, embedded) == "1 30000"


def test_embedded_celery_uses_filesystem_broker_and_database_beat(embedded):
    """Celery's broker is the filesystem (in CELERY_BROKER_DIR) and beat reads its schedule
    from the database."""
    code = (
        "from config.celery_app import app\n"
        "print(app.conf.broker_url, app.conf.beat_scheduler,"
        " app.conf.broker_transport_options['data_folder_in'])"
    )
    broker, scheduler, folder = shell(code, embedded).split(" ")
    assert broker == "filesystem://"
    assert scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert folder == embedded["CELERY_BROKER_DIR"]
    assert (Path(folder) / "processed").is_dir()


def test_celery_broker_url_from_environment(embedded):
    """CELERY_BROKER_URL switches the broker (to Redis in production)."""
    env = {**embedded, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}
    code = "from config.celery_app import app\nprint(app.conf.broker_url)"
    assert shell(code, env) == "redis://127.0.0.1:6379/0"


def test_production_settings_pass_deploy_checks(tmp_path):
    """`check --deploy` on the production settings reports no errors."""
    env = {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
    }
    result = manage("check", "--deploy", "--settings=config.settings.production", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERRORS:" not in output, output


def test_production_settings_require_a_secret_key(tmp_path):
    """The production settings refuse to start without SECRET_KEY."""
    env = {
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
    }
    result = manage("check", "--settings=config.settings.production", env=env, drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_lease_shorter_than_two_send_timeouts_is_refused(tmp_path):
    """An execution must never lose its endpoint while a payload is in flight: settings with
    SYNC_LEASE_SECONDS under twice WEBHOOK_TIMEOUT_SECONDS do not load."""
    env = {"CELERY_BROKER_DIR": str(tmp_path), "WEBHOOK_TIMEOUT_SECONDS": "30"}
    refused = manage("check", env={**env, "SYNC_LEASE_SECONDS": "45"})
    assert refused.returncode != 0
    assert "SYNC_LEASE_SECONDS must be at least twice WEBHOOK_TIMEOUT_SECONDS" in refused.stderr
    assert manage("check", env={**env, "SYNC_LEASE_SECONDS": "60"}).returncode == 0


@pytest.mark.parametrize("name", ["WEBHOOK_TIMEOUT_SECONDS", "SYNC_RETRY_BACKOFF_SECONDS"])
def test_a_zero_or_negative_sync_setting_is_refused(tmp_path, name):
    refused = manage("check", env={"CELERY_BROKER_DIR": str(tmp_path), name: "0"})
    assert refused.returncode != 0
    assert f"{name} must be a positive number of seconds." in refused.stderr
