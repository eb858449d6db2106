"""The comparison engine and the flat-file reader, on real files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest
from django.core.management import CommandError, call_command

from orders.selectors import EXPORT_COLUMNS
from reconciliation.engine import Kind, Options, compare
from reconciliation.reading import UnreadableFile, open_flat_file
from reconciliation.report import differences, neutralize, write_report

HEADER = list(EXPORT_COLUMNS)  # the S-360 flat-file export


def row(order_id: int, **changes: str) -> list[str]:
    values = {
        "ORDER_ID": str(order_id),
        "ORDER_STATE": "CLOSED",
        "ORDER_TYPE": "SALE",
        "ORDER_ORIGINATOR": "TICKETSHOP",
        "CONTACT_NUMBER": "0004242",
        "SALES_CHANNEL_CODE": "WEB",
        "CURRENCY": "CHF",
        "SALE_AMOUNT": "40.00",
        "CREATION_DATE": "2026-12-03T16:00:00+00:00",
        "LAST_MOD_DATE": "2026-12-03T16:05:00+00:00",
        "SYNC_VERSION": "1",
    }
    values.update(changes)
    return [values[c] for c in HEADER]


def write(
    path: Path, rows: list[list[str]], *, header=HEADER, delimiter=";", encoding="utf-8", bom=False
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def run(tmp_path: Path, s360_rows, crm_rows, options: Options | None = None, **crm_format):
    s360 = write(tmp_path / "s360.csv", s360_rows)
    crm = write(tmp_path / "crm.csv", crm_rows, **crm_format)
    work = tmp_path / "work"
    work.mkdir()
    summary = compare(
        open_flat_file(s360, work, name="S-360"),
        open_flat_file(crm, work, name="CRM"),
        workdir=work,
        options=options or Options(),
    )
    return summary, list(differences(work / "job.duckdb"))


def test_identical_files_match_entirely(tmp_path):
    rows = [row(i) for i in range(1, 51)]
    summary, diffs = run(tmp_path, rows, rows)
    assert (summary.s360_rows, summary.crm_rows, summary.matched) == (50, 50, 50)
    assert diffs == []


def test_missing_on_each_side_and_changed_fields_are_reported_exactly(tmp_path):
    s360 = [row(1), row(2), row(3, ORDER_STATE="CANCELLED"), row(4, SYNC_VERSION="3")]
    crm = [row(2), row(3), row(4), row(5)]
    summary, diffs = run(tmp_path, s360, crm)
    assert set(diffs) == {
        (Kind.ONLY_IN_S360, "1", None, None, None),
        (Kind.ONLY_IN_CRM, "5", None, None, None),
        (Kind.MISMATCH, "3", "ORDER_STATE", "CANCELLED", "CLOSED"),
        (Kind.MISMATCH, "4", "SYNC_VERSION", "3", "1"),
    }
    assert summary.as_api() == {
        "s360Rows": 4,
        "crmRows": 4,
        "matched": 1,
        "onlyInS360": 1,
        "onlyInCrm": 1,
        "mismatched": 2,
        "duplicateKeysS360": 0,
        "duplicateKeysCrm": 0,
        "unparseable": 0,
        "mismatchesByColumn": {"ORDER_STATE": 1, "SYNC_VERSION": 1},
        "columnsOnlyInS360": [],
        "columnsOnlyInCrm": [],
        "rowsWithoutKeyS360": 0,
        "rowsWithoutKeyCrm": 0,
    }


@pytest.mark.parametrize(
    "s360_value, crm_value, column",
    [
        ("40.00", "40", "SALE_AMOUNT"),
        ("40.00", "40,00", "SALE_AMOUNT"),
        ("40.00", " 40.0 ", "SALE_AMOUNT"),
        ("2026-12-03T16:00:00+00:00", "2026-12-03T17:00:00+01:00", "CREATION_DATE"),
        ("2026-12-03T16:00:00+00:00", "2026-12-03 16:00:00Z", "CREATION_DATE"),
        ("CLOSED", "  CLOSED ", "ORDER_STATE"),
        ("1", "01", "SYNC_VERSION"),
    ],
)
def test_values_are_compared_after_normalization(tmp_path, s360_value, crm_value, column):
    summary, diffs = run(
        tmp_path, [row(1, **{column: s360_value})], [row(1, **{column: crm_value})]
    )
    assert diffs == [] and summary.matched == 1


def test_leading_zeros_of_contact_numbers_count(tmp_path):
    _summary, diffs = run(
        tmp_path, [row(1, CONTACT_NUMBER="0004242")], [row(1, CONTACT_NUMBER="4242")]
    )
    assert diffs == [(Kind.MISMATCH, "1", "CONTACT_NUMBER", "0004242", "4242")]


def test_unparseable_values_are_reported_as_such_not_as_differences(tmp_path):
    summary, diffs = run(
        tmp_path,
        [row(1), row(2)],
        [row(1, SALE_AMOUNT="forty"), row(2, CREATION_DATE="yesterday")],
    )
    assert {(d[0], d[2]) for d in diffs} == {
        (Kind.UNPARSEABLE, "SALE_AMOUNT"),
        (Kind.UNPARSEABLE, "CREATION_DATE"),
    }
    assert (summary.mismatched, summary.unparseable, summary.matched) == (0, 2, 0)


def test_duplicate_keys_are_reported_and_left_out_of_the_matching(tmp_path):
    summary, diffs = run(tmp_path, [row(1), row(2)], [row(1), row(1, ORDER_STATE="X"), row(2)])
    assert (Kind.DUPLICATE_KEY, "1", "CRM", None, "2") in diffs
    assert (summary.duplicate_keys_crm, summary.matched) == (1, 1)
    assert not [d for d in diffs if d[0] == Kind.MISMATCH]


def test_a_column_map_ignore_list_tolerance_case_and_composite_key(tmp_path):
    crm_header = ["Order", "Status", *HEADER[2:]]
    options = Options(
        key=("ORDER_ID", "CURRENCY"),
        column_map={"Order": "ORDER_ID", "Status": "ORDER_STATE"},
        ignore=("SYNC_VERSION",),
        numeric_tolerance=0.01,
        case_insensitive=("ORDER_STATE",),
    )
    summary, diffs = run(
        tmp_path,
        [row(1), row(2), row(3, SALE_AMOUNT="10.00")],
        [
            row(1, ORDER_STATE="closed", SYNC_VERSION="9"),
            row(2, SALE_AMOUNT="40.005"),
            row(3, SALE_AMOUNT="10.50"),
        ],
        options,
        header=crm_header,
    )
    assert diffs == [(Kind.MISMATCH, "3|CHF", "SALE_AMOUNT", "10.00", "10.50")]
    assert summary.matched == 2


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    _summary, diffs = run(tmp_path, [row(1)], [row(1, ORDER_STATE="X")], delimiter=delimiter)
    assert diffs == [(Kind.MISMATCH, "1", "ORDER_STATE", "CLOSED", "X")]


@pytest.mark.parametrize("encoding, bom", [("utf-8", True), ("cp1252", False), ("latin-1", False)])
def test_bom_and_windows_encodings_are_read(tmp_path, encoding, bom):
    s360 = (
        [row(1, ORDER_ORIGINATOR="Théâtre €")]
        if encoding == "cp1252"
        else [row(1, ORDER_ORIGINATOR="Théâtre")]
    )
    summary, diffs = run(tmp_path, s360, s360, encoding=encoding, bom=bom)
    assert diffs == [] and summary.matched == 1


def test_quoted_fields_and_ragged_rows(tmp_path):
    s360 = write(tmp_path / "s360.csv", [row(1, ORDER_ORIGINATOR="A;B"), row(2)])
    crm = tmp_path / "crm.csv"
    crm.write_text(
        ";".join(HEADER)
        + "\n"
        + ";".join(row(1, ORDER_ORIGINATOR='"A;B"')).replace('""A;B""', '"A;B"')
        + "\n2;CLOSED\n",
        encoding="utf-8",
    )
    work = tmp_path / "w"
    work.mkdir()
    summary = compare(
        open_flat_file(s360, work, name="S-360"),
        open_flat_file(crm, work, name="CRM"),
        workdir=work,
        options=Options(),
    )
    found = list(differences(work / "job.duckdb"))
    assert all(d[1] == "2" for d in found), found  # row 1 equal; short row 2 differs, not shifted
    assert {d[2] for d in found} >= {"ORDER_TYPE", "SALE_AMOUNT"}
    assert summary.matched == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text file"),
        (b"just one column\n1\n", "header row"),
        (b"ORDER_ID;;X\n1;2;3\n", "empty or repeated"),
        (b"\xff\xfeO\x00R\x00", "UTF-16"),
    ],
)
def test_unreadable_files_get_a_message_that_says_what_to_fix(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=message):
        open_flat_file(path, tmp_path, name="CRM")


def test_a_key_column_missing_on_one_side_is_refused(tmp_path):
    with pytest.raises(UnreadableFile, match="no key column"):
        run(tmp_path, [row(1)], [row(1)], header=["Order", *HEADER[1:]])


def test_the_report_neutralizes_formulas(tmp_path):
    assert neutralize("=1+1") == "'=1+1"
    assert neutralize("+41 22") == "'+41 22"
    assert neutralize("-12.00") == "'-12.00"
    assert neutralize("@SUM(A1)") == "'@SUM(A1)"
    assert neutralize("40.00") == "40.00"
    out = tmp_path / "report.csv"
    assert write_report([("MISMATCH", "1", "ORDER_STATE", "=HYPERLINK(1)", "X")], out) == 1
    assert out.read_text().splitlines()[1] == "MISMATCH;1;ORDER_STATE;'=HYPERLINK(1);X"


def test_reconcile_command(tmp_path, capsys):
    s360 = write(tmp_path / "s.csv", [row(1), row(2)])
    crm = write(tmp_path / "c.csv", [row(2, ORDER_STATE="=cmd"), row(3)])
    call_command("reconcile", str(s360), str(crm), "--out", str(tmp_path / "r.csv"))
    out = capsys.readouterr().out
    assert '"onlyInS360": 1' in out and '"mismatched": 1' in out
    report = (tmp_path / "r.csv").read_text().splitlines()
    assert report[0] == "KIND;KEY;COLUMN;S360_VALUE;CRM_VALUE"
    assert "MISMATCH;2;ORDER_STATE;CLOSED;'=cmd" in report
    with pytest.raises(CommandError, match="empty"):
        (tmp_path / "e.csv").write_bytes(b"")
        call_command("reconcile", str(s360), str(tmp_path / "e.csv"))
    with pytest.raises(CommandError, match="JSON"):
        call_command("reconcile", str(s360), str(crm), "--map", "{nope")


def test_the_job_database_holds_only_the_differences(tmp_path):
    run(tmp_path, [row(1), row(2)], [row(2)])
    db = duckdb.connect(str(tmp_path / "work" / "job.duckdb"), read_only=True)
    assert [t[0] for t in db.execute("SHOW TABLES").fetchall()] == ["differences"]
    db.close()


def test_an_xlsx_export_is_read_from_its_first_sheet(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(
        [
            1,
            "CLOSED",
            "SALE",
            "TICKETSHOP",
            "0004242",
            "WEB",
            "CHF",
            40,
            "2026-12-03T16:00:00+00:00",
            "2026-12-03T16:05:00+00:00",
            1,
        ]
    )
    sheet.append(
        [
            2,
            "CANCELLED",
            "SALE",
            "TICKETSHOP",
            "0004242",
            "WEB",
            "CHF",
            40.5,
            "2026-12-03T16:00:00+00:00",
            "2026-12-03T16:05:00+00:00",
            1,
        ]
    )
    workbook.save(tmp_path / "crm.xlsx")
    s360 = write(tmp_path / "s360.csv", [row(1), row(2, SALE_AMOUNT="40.50")])
    work = tmp_path / "w"
    work.mkdir()
    summary = compare(
        open_flat_file(s360, work, name="S-360"),
        open_flat_file(tmp_path / "crm.xlsx", work, name="CRM"),
        workdir=work,
        options=Options(),
    )
    assert list(differences(work / "job.duckdb")) == [
        (Kind.MISMATCH, "2", "ORDER_STATE", "CLOSED", "CANCELLED")
    ]
    assert summary.matched == 1


def test_a_damaged_workbook_is_refused_with_a_message(tmp_path):
    path = tmp_path / "crm.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnreadableFile, match="workbook"):
        open_flat_file(path, tmp_path, name="CRM")


def test_a_date_format_per_column_reads_crm_style_dates(tmp_path):
    summary, diffs = run(
        tmp_path,
        [row(1), row(2)],
        [row(1, CREATION_DATE="03.12.2026 16:00"), row(2, CREATION_DATE="03.12.2026 17:30")],
        Options(date_formats={"CREATION_DATE": "%d.%m.%Y %H:%M"}),
    )
    assert diffs == [
        (Kind.MISMATCH, "2", "CREATION_DATE", "2026-12-03T16:00:00+00:00", "03.12.2026 17:30")
    ]
    assert summary.matched == 1


# --- from the review: files as they come out of real CRMs ---------------------------------


def test_a_quoted_field_with_a_line_break_is_one_value(tmp_path):
    summary, diffs = run(
        tmp_path,
        [row(1, ORDER_ORIGINATOR="line one\nline two")],
        [row(1, ORDER_ORIGINATOR="line one\nline two")],
    )
    assert diffs == [] and summary.matched == 1


def test_a_windows_1252_file_is_recognized_even_when_its_first_accent_comes_late(tmp_path):
    late = [row(i) for i in range(1, 6000)] + [row(6000, ORDER_ORIGINATOR="Café")]
    summary, diffs = run(tmp_path, late, late, encoding="cp1252")
    assert summary.matched == 6000 and diffs == []
    path = tmp_path / "small.csv"
    path.write_bytes("ORDER_ID;NAME\n1;Caf\xe9\n".encode("latin-1"))
    assert open_flat_file(path, tmp_path, name="CRM").encoding == "cp1252"


def test_a_key_duplicated_on_one_side_is_not_called_missing_on_the_other(tmp_path):
    summary, diffs = run(tmp_path, [row(1), row(1, ORDER_STATE="X"), row(2)], [row(1), row(2)])
    assert (Kind.DUPLICATE_KEY, "1", "S360", "2", None) in diffs
    assert summary.only_in_crm == 0 and summary.only_in_s360 == 0


def test_columns_on_one_side_only_are_named_in_the_summary(tmp_path):
    crm_header = [*HEADER[:-1], "PHONE"]
    summary, _ = run(tmp_path, [row(1)], [row(1)], header=crm_header)
    assert summary.columns_only_in_s360 == ["SYNC_VERSION"]
    assert summary.columns_only_in_crm == ["PHONE"]


def test_a_quoted_header_with_delimiters_inside_keeps_its_columns(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text('ORDER_ID,"NOTE;A;B",NAME\n1,x,y\n', encoding="utf-8-sig")
    flat = open_flat_file(path, tmp_path, name="CRM")
    assert (flat.delimiter, flat.columns) == (",", ("ORDER_ID", "NOTE;A;B", "NAME"))


def test_a_tolerance_does_not_hide_an_amount_missing_on_one_side(tmp_path):
    _, diffs = run(tmp_path, [row(1)], [row(1, SALE_AMOUNT="")], Options(numeric_tolerance=0.01))
    assert diffs == [(Kind.MISMATCH, "1", "SALE_AMOUNT", "40.00", None)]


def test_rows_without_a_key_are_counted_not_matched(tmp_path):
    summary, diffs = run(tmp_path, [row(1)], [row(1), row(0, ORDER_ID=""), ["", "", ""]])
    assert (summary.crm_rows, summary.rows_without_key_crm, summary.matched) == (1, 2, 1)
    assert diffs == []


def test_a_workbook_not_named_xlsx_is_read_too(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["ORDER_ID", "ORDER_STATE"])
    workbook.active.append([1, "CLOSED"])
    workbook.save(tmp_path / "export.xlsx")
    (tmp_path / "export.xlsx").rename(tmp_path / "upload.bin")
    flat = open_flat_file(tmp_path / "upload.bin", tmp_path, name="CRM")
    assert flat.columns == ("ORDER_ID", "ORDER_STATE")


def test_a_column_map_that_names_a_column_twice_is_refused(tmp_path):
    with pytest.raises(UnreadableFile, match="column twice"):
        run(tmp_path, [row(1)], [row(1)], Options(column_map={"ORDER_STATE": "ORDER_ID"}))


# --- found by fuzzing (tests/test_fuzz_reader.py) ----------------------------------------------


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n"])
def test_a_file_holding_only_a_bom_is_empty(tmp_path, content):
    """It was an IndexError: the BOM made the bytes look non-empty."""
    path = tmp_path / "bom.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match="empty"):
        open_flat_file(path, tmp_path, name="CRM")


@pytest.mark.parametrize("odd", ["\x0c", "\x1e", "\x85", "\u2028"])
def test_the_header_is_the_first_line_as_csv_reads_it(tmp_path, odd):
    """A form feed or U+2028 in a column name does not end the header line (for csv and
    DuckDB it does not), so the columns named are the file's own."""
    path = tmp_path / "odd.csv"
    path.write_text(f"ORDER_ID;NOTE{odd}X;NAME\n1;a;b\n", encoding="utf-8")
    assert open_flat_file(path, tmp_path, name="CRM").columns == ("ORDER_ID", f"NOTE{odd}X", "NAME")


def test_the_preview_reads_a_file_with_old_mac_line_ends(tmp_path):
    """Classic-Mac '\r' line ends made csv raise "new-line character seen in unquoted field"
    in the admin's preview (a 500) instead of showing the rows."""
    from reconciliation.reading import preview_rows

    data = b"ORDER_ID;NAME\r1;a\r2;b\r"
    assert preview_rows(io.BytesIO(data), name="CRM") == [
        ["ORDER_ID", "NAME"],
        ["1", "a"],
        ["2", "b"],
    ]
