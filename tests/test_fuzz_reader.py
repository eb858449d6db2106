"""Fuzzing the flat-file reader (reconciliation/reading.py) with Hypothesis.

Two properties: any bytes at all are either read or refused with `UnreadableFile` (whose
message goes to the user), never another exception; and a well-formed file as people export
them (`;`, `,` or tab; quotes, embedded newlines; UTF-8 with or without BOM, Windows-1252;
an XLSX workbook) reads back as exactly the rows written. Examples per test: the Hypothesis
profile (tests/conftest.py).
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation.reading import (
    DELIMITERS,
    XLSX_MAGIC,
    UnreadableFile,
    open_flat_file,
    preview_rows,
)


def read_both_ways(data: bytes) -> tuple[list[list[str]], list[list[str]]] | None:
    """The rows as the comparison reads them and as the preview shows them, or None when the
    reader refused the file."""
    with tempfile.TemporaryDirectory() as tmp:
        upload = Path(tmp) / "upload"
        upload.write_bytes(data)
        try:
            flat = open_flat_file(upload, Path(tmp), name="CRM")
        except UnreadableFile as error:
            assert "CRM" in str(error)
            with pytest.raises(UnreadableFile):
                preview_rows(io.BytesIO(data), name="CRM")
            return None
        with flat.path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter=flat.delimiter))
        assert tuple(c.strip() for c in rows[0]) == flat.columns
    return rows, preview_rows(io.BytesIO(data), name="CRM", rows=3)


# --- anything at all --------------------------------------------------------------------------

# Bytes that look like the start of something the reader treats specially, then noise.
prefixes = st.sampled_from(
    [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, XLSX_MAGIC, b"A;B\n", b'"A,B";C\n', b"\n\n"]
)


@given(prefix=prefixes, noise=st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_a_clear_error(prefix, noise):
    read_both_ways(prefix + noise)


@given(text=st.text(max_size=200), encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
def test_any_text_is_read_or_refused_with_a_clear_error(text, encoding):
    read_both_ways(text.encode(encoding, "replace"))


# --- well-formed files round-trip ---------------------------------------------------------------

# Column names as CRMs name them; any delimiter inside a name would make the header ambiguous.
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}( [A-Za-z0-9_]{1,8})?", fullmatch=True)
# Values: anything a spreadsheet holds, delimiters, quotes and line breaks included.
utf8_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
# Windows-1252 text whose non-ASCII bytes are all >= 0xC0: no valid UTF-8 can come of them, so
# the file is unambiguously not UTF-8 (a cp1252 file that happens to be valid UTF-8 is read as
# UTF-8, rightly).
cp1252_values = st.text(st.sampled_from("abcXYZ019 ;,\t\"'\n\r-éèàüöäçñÄÖÜßÉ"), max_size=20)


@st.composite
def tables(draw, values):
    header = draw(st.lists(names, min_size=2, max_size=6, unique_by=str.lower))
    rows = draw(st.lists(st.lists(values, min_size=len(header), max_size=len(header)), max_size=8))
    return [header, *rows]


def csv_bytes(table, *, delimiter: str, encoding: str, terminator: str, quote_all: bool) -> bytes:
    out = io.StringIO(newline="")
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(out, delimiter=delimiter, lineterminator=terminator, quoting=quoting).writerows(
        table
    )
    return out.getvalue().encode(encoding)


def without_blank_rows(table):
    # An all-empty row of one column is written as an empty line, which csv reads as no row.
    return [row for row in table if row != [""] * len(row) or len(row) > 1]


@given(
    table=tables(utf8_values),
    delimiter=st.sampled_from(DELIMITERS),
    bom=st.booleans(),
    # Python's csv writer quotes a value holding '\r' only when '\r' is in the line end: with
    # '\n' line ends and minimal quoting, the file it writes is itself ambiguous.
    style=st.sampled_from([("\r\n", False), ("\r\n", True), ("\n", True)]),
)
def test_a_utf8_file_reads_back_as_written(table, delimiter, bom, style):
    terminator, quote_all = style
    data = csv_bytes(
        table,
        delimiter=delimiter,
        encoding="utf-8-sig" if bom else "utf-8",
        terminator=terminator,
        quote_all=quote_all,
    )
    rows, preview = read_both_ways(data)
    assert rows == without_blank_rows(table)
    assert preview == rows[:4]


@given(
    table=tables(cp1252_values),
    delimiter=st.sampled_from(DELIMITERS),
    quote_all=st.booleans(),
)
def test_a_windows_1252_file_reads_back_as_written(table, delimiter, quote_all):
    data = csv_bytes(
        table, delimiter=delimiter, encoding="cp1252", terminator="\r\n", quote_all=quote_all
    )
    rows, _ = read_both_ways(data)
    assert rows == without_blank_rows(table)


# openpyxl refuses control characters in cells, and a leading "=" would make a formula.
cell_text = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=20).filter(
    lambda s: not s.startswith("=")
)
cells = st.one_of(cell_text, st.integers(-(10**12), 10**12))


@given(table=tables(cells))
def test_an_xlsx_workbook_reads_back_as_its_cells(table):
    from openpyxl import Workbook

    workbook = Workbook()
    for row in table:
        workbook.active.append(row)
    data = io.BytesIO()
    workbook.save(data)
    rows, preview = read_both_ways(data.getvalue())
    expected = [[str(cell) for cell in row] for row in table]
    assert rows == expected
    assert preview == expected[:4]
