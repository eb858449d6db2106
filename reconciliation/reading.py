"""Reading flat files as people export them: `;`, `,` or tab; UTF-8 with or without a BOM, or
Windows-1252 / Latin-1 from Excel; a header row; every value text first (leading zeros live)."""

from __future__ import annotations

import codecs
import csv
import io
import re
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


def _decode(sample: bytes, *, whole: bool) -> tuple[str, str]:
    """Text and encoding of a file's first bytes (`whole`: they are the whole file)."""
    if sample.startswith(codecs.BOM_UTF8):
        return sample[3:].decode("utf-8", "replace"), "utf-8-sig"
    try:
        return sample.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the end of the sample is still UTF-8.
        if not whole and error.start >= len(sample) - 3:
            return sample[: error.start].decode("utf-8"), "utf-8"
    return sample.decode("cp1252", "replace"), "cp1252"


def _is_utf8(path: Path) -> bool:
    """Whether the whole file decodes as UTF-8: the first non-ASCII byte of an Excel export
    may come megabytes in."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(4 * 1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _split_header(header: str, delimiter: str) -> list[str]:
    return next(csv.reader([header], delimiter=delimiter), [])


def _sniff(sample: bytes, name: str, *, whole: bool = False) -> _Sniffed:
    """Encoding, delimiter and header from the first bytes; UnreadableFile says what is wrong."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(
            f"The {name} file is UTF-16: export it as UTF-8 (or 'CSV' from Excel) instead."
        )
    if b"\x00" in sample:
        raise UnreadableFile(f"The {name} file is not a text file (it holds binary data).")
    text, encoding = _decode(sample, whole=whole)
    # After decoding: a file holding only a BOM (or blanks) is empty too.
    if not text.strip():
        raise UnreadableFile(f"The {name} file is empty.")
    # The first line as csv and DuckDB see it: str.splitlines() would also cut at a form feed
    # or U+2028 inside a column name, and the columns named here would not be the file's.
    header = re.split(r"\r|\n", text, maxsplit=1)[0]
    # Per candidate: does it split the header into clean names (no stray quote left), and
    # into how many? Clean first, then more columns; on a tie S-360's own ';' wins.
    splits = {d: _split_header(header, d) for d in DELIMITERS}
    delimiter = max(
        DELIMITERS,
        key=lambda d: (not any('"' in name for name in splits[d]), len(splits[d])),
    )
    if len(splits[delimiter]) < 2:
        raise UnreadableFile(
            f"The {name} file's first line has no ';', ',' or tab: it needs a header row of "
            "column names (at least the key and one more column)."
        )
    columns = tuple(c.strip() for c in _split_header(header, delimiter))
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
        with path.open("rb") as workbook:
            _xlsx_to_csv(workbook, converted, name=name)
        path = converted
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    sniffed = _sniff(head, name, whole=len(head) < SAMPLE_BYTES)
    if sniffed.encoding == "utf-8" and _is_utf8(path):
        return FlatFile(path, sniffed.delimiter, sniffed.encoding, sniffed.columns)
    if sniffed.encoding == "utf-8":  # UTF-8 at first, then not: an Excel (cp1252) export
        sniffed = _Sniffed(sniffed.text, "cp1252", sniffed.delimiter, sniffed.columns)
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
    sniffed = _sniff(head, name, whole=len(head) < SAMPLE_BYTES)
    # newline="": lines end where csv says (old-Mac '\r' line ends too); otherwise csv
    # refuses a lone '\r' with "new-line character seen in unquoted field".
    reader = csv.reader(io.StringIO(sniffed.text, newline=""), delimiter=sniffed.delimiter)
    return [row for _, row in zip(range(rows + 1), reader, strict=False)]
