"""The differences report as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
from django.http import StreamingHttpResponse

REPORT_COLUMNS = ("KIND", "KEY", "COLUMN", "S360_VALUE", "CRM_VALUE")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAGE = 10_000


def neutralize(value: object) -> str:
    """Return a cell a spreadsheet shows as text: formula-looking values get a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def differences(job_db: Path) -> Iterator[tuple]:
    """Yield (kind, key, column, s360 value, crm value) rows, by key, page by page."""
    db = duckdb.connect(str(job_db), read_only=True)
    try:
        cursor = db.execute(
            "SELECT kind, k, column_name, s360_value, crm_value FROM differences "
            "ORDER BY k, kind, column_name"
        )
        while rows := cursor.fetchmany(PAGE):
            yield from rows
    finally:
        db.close()


def report_blocks(rows: Iterable[tuple]) -> Iterator[str]:
    """Yield the report CSV (UTF-8 text, `;`, header first) in blocks, neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralize(v) for v in row])
        if count % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_report(rows: Iterable[tuple], out: Path) -> int:
    """Write the report CSV to a file; return the number of differences written."""
    lines = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        for block in report_blocks(rows):
            handle.write(block)
            lines += block.count("\n")
    return lines - 1


def report_download(reconciliation: object) -> StreamingHttpResponse:
    """The stored differences of a reconciliation as a streamed CSV download."""
    from .models import Difference

    rows = (
        Difference.objects.filter(reconciliation=reconciliation)
        .order_by("key", "id")
        .values_list("kind", "key", "column", "s360_value", "crm_value")
        .iterator(chunk_size=5000)
    )
    response = StreamingHttpResponse(report_blocks(rows), content_type="text/csv; charset=utf-8")
    filename = f"reconciliation-{reconciliation.pk}.csv"  # type: ignore[attr-defined]
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
