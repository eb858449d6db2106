"""The S-360 flat file as text: UTF-8, `;`-separated, header row, one order per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from .selectors import EXPORT_COLUMNS

# Rows per yielded block: one yield per row would cost more than the rows themselves.
BLOCK_ROWS = 2000


def export_csv_blocks(rows: Iterable[tuple[object, ...]]) -> Iterator[str]:
    """Yield the flat file in text blocks, header first; memory stays flat at any size."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % BLOCK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
