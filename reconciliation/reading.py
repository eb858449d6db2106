"""Reading flat files as people export them: `;`, `,` or tab; UTF-8 with or without a BOM, or
Windows-1252 / Latin-1 from Excel; a header row; every value text first (leading zeros live)."""

from __future__ import annotations

import codecs
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (";", ",", "\t")


class UnreadableFile(ValueError):
    """The file cannot be compared; the message says what to fix."""


@dataclass(frozen=True)
class FlatFile:
    path: Path  # UTF-8 without BOM, ready for DuckDB (the upload itself when it already was)
    delimiter: str
    encoding: str  # what the upload was in
    columns: tuple[str, ...]


@dataclass(frozen=True)
class _Sniffed:
    text: str
    encoding: str
    delimiter: str
    columns: tuple[str, ...]


def _decode(sample: bytes) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        return sample[3:].decode("utf-8", "replace"), "utf-8-sig"
    try:
        return sample.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the end of the sample is still UTF-8.
        if error.start >= len(sample) - 3:
            return sample[: error.start].decode("utf-8"), "utf-8"
    return sample.decode("cp1252", "replace"), "cp1252"


def _sniff(sample: bytes, name: str) -> _Sniffed:
    """Encoding, delimiter and header from the first bytes; UnreadableFile says what is wrong."""
    if not sample.strip():
        raise UnreadableFile(f"The {name} file is empty.")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(
            f"The {name} file is UTF-16: export it as UTF-8 (or 'CSV' from Excel) instead."
        )
    if b"\x00" in sample:
        raise UnreadableFile(f"The {name} file is not a text file (it holds binary data).")
    text, encoding = _decode(sample)
    header = text.splitlines()[0]
    counts = {d: header.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d])
    if not counts[delimiter]:
        raise UnreadableFile(
            f"The {name} file's first line has no ';', ',' or tab: it needs a header row of "
            "column names."
        )
    columns = tuple(c.strip().strip('"').strip() for c in header.split(delimiter))
    if any(not c for c in columns) or len(set(columns)) != len(columns):
        raise UnreadableFile(
            f"The {name} file's header has empty or repeated column names: {list(columns)}."
        )
    return _Sniffed(text, encoding, delimiter, columns)


XLSX_MAGIC = b"PK\x03\x04"


def _xlsx_to_csv(
    source: BinaryIO | Path, target: Path, *, name: str, limit: int | None = None
) -> None:
    """The first sheet of a workbook as a `;` CSV: cells as text, as Excel shows them."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise UnreadableFile(
            f"The {name} file looks like a workbook but cannot be read: {error}"
        ) from None
    sheet = workbook.worksheets[0]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        for count, row in enumerate(sheet.iter_rows(values_only=True)):
            if limit is not None and count > limit:
                break
            writer.writerow(["" if v is None else _cell_text(v) for v in row])
    workbook.close()


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)


def open_flat_file(path: Path, workdir: Path, *, name: str) -> FlatFile:
    """Sniff an upload and return it as UTF-8 (transcoded into `workdir` when it was not).
    An XLSX workbook is read from its first sheet."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if head.startswith(XLSX_MAGIC):
        converted = workdir / f"{name}-sheet.csv"
        _xlsx_to_csv(path, converted, name=name)
        path = converted
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    sniffed = _sniff(head, name)
    if sniffed.encoding == "utf-8":
        return FlatFile(path, sniffed.delimiter, sniffed.encoding, sniffed.columns)
    utf8 = workdir / f"{name}.csv"
    source = "utf-8-sig" if sniffed.encoding == "utf-8-sig" else "cp1252"
    with (
        path.open(encoding=source, errors="replace", newline="") as src,
        utf8.open("w", encoding="utf-8", newline="") as dst,
    ):
        shutil.copyfileobj(src, dst, 1024 * 1024)
    return FlatFile(utf8, sniffed.delimiter, sniffed.encoding, sniffed.columns)


def preview_rows(upload: BinaryIO, *, name: str, rows: int = 5) -> list[list[str]]:
    """The header and first rows of an upload, read as the comparison will read it."""
    upload.seek(0)
    head = upload.read(SAMPLE_BYTES)
    upload.seek(0)
    if head.startswith(XLSX_MAGIC):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            converted = Path(tmp) / "preview.csv"
            _xlsx_to_csv(upload, converted, name=name, limit=rows)
            head = converted.read_bytes()
        upload.seek(0)
    sniffed = _sniff(head, name)
    lines = sniffed.text.splitlines()[: rows + 1]
    return list(csv.reader(lines, delimiter=sniffed.delimiter))
