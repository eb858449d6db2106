"""Shared set-up of the benchmarks: a fresh database of their own, never the project's."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(db_name: str, *, keep: bool = False) -> str:
    """Point Django at a benchmark database of its own (a SQLite file in the temp folder, or
    database `db_name` on the DATABASE_URL's PostgreSQL server), emptied unless `keep`,
    migrated, and return a label for the report."""
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, _, _name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db_name]
            ).fetchone()
            if exists and not keep:
                conn.execute(f'DROP DATABASE "{db_name}"')
            if not exists or not keep:
                conn.execute(f'CREATE DATABASE "{db_name}"')
        os.environ["DATABASE_URL"] = f"{base}/{db_name}"
        label = "PostgreSQL"
    else:
        path = Path(tempfile.gettempdir()) / "s360-bench" / f"{db_name}.sqlite3"
        path.parent.mkdir(exist_ok=True)
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        label = "SQLite (WAL)"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault(
        "LOG_LEVEL", "WARNING"
    )  # DEBUG keeps every query in memory: not what production does
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return label
