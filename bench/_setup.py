"""Shared set-up of the benchmarks: a fresh database of their own, never the project's."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(db_name: str) -> str:
    """Point Django at a throwaway database (SQLite file, or `<DATABASE_URL>` + suffix on
    PostgreSQL), create its tables, and return a label for the report."""
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, _, _name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
            conn.execute(f'CREATE DATABASE "{db_name}"')
        os.environ["DATABASE_URL"] = f"{base}/{db_name}"
        label = "PostgreSQL"
    else:
        path = Path(tempfile.mkdtemp(prefix="bench-")) / f"{db_name}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        label = "SQLite (WAL)"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory: not what production does
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return label
