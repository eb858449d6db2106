"""The data consistency check: two flat files, one key, every difference — in DuckDB.

One DuckDB file per job, a memory limit and a spill folder, so ten million rows a side run in
bounded memory. Values are compared after normalization (design.md): text trimmed, amounts as
decimals (`40` = `40.00` = `40,00`), timestamps as instants; a value that does not parse is
reported as such, never as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orders.selectors import EXPORT_COLUMNS

from .reading import FlatFile, UnreadableFile

AMOUNT_COLUMNS = frozenset({"SALE_AMOUNT"})
INSTANT_COLUMNS = frozenset({"CREATION_DATE", "LAST_MOD_DATE"})
INTEGER_COLUMNS = frozenset({"SYNC_VERSION"})
DEFAULT_KEY = ("ORDER_ID",)


class Kind:
    ONLY_IN_S360 = "ONLY_IN_S360"
    ONLY_IN_CRM = "ONLY_IN_CRM"
    MISMATCH = "MISMATCH"
    UNPARSEABLE = "UNPARSEABLE"
    DUPLICATE_KEY = "DUPLICATE_KEY"


@dataclass
class Summary:
    s360_rows: int = 0
    crm_rows: int = 0
    matched: int = 0
    only_in_s360: int = 0
    only_in_crm: int = 0
    mismatched: int = 0
    duplicate_keys_s360: int = 0
    duplicate_keys_crm: int = 0
    unparseable: int = 0
    mismatches_by_column: dict[str, int] = field(default_factory=dict)
    # Columns that were not compared because the other side has no such column (after the
    # column map): a typo or a missing mapping must not pass for "everything matched".
    columns_only_in_s360: list[str] = field(default_factory=list)
    columns_only_in_crm: list[str] = field(default_factory=list)
    rows_without_key_s360: int = 0
    rows_without_key_crm: int = 0

    def as_api(self) -> dict[str, object]:
        """The summary with the API's (design.md) names."""
        return {
            "s360Rows": self.s360_rows,
            "crmRows": self.crm_rows,
            "matched": self.matched,
            "onlyInS360": self.only_in_s360,
            "onlyInCrm": self.only_in_crm,
            "mismatched": self.mismatched,
            "duplicateKeysS360": self.duplicate_keys_s360,
            "duplicateKeysCrm": self.duplicate_keys_crm,
            "unparseable": self.unparseable,
            "mismatchesByColumn": self.mismatches_by_column,
            "columnsOnlyInS360": self.columns_only_in_s360,
            "columnsOnlyInCrm": self.columns_only_in_crm,
            "rowsWithoutKeyS360": self.rows_without_key_s360,
            "rowsWithoutKeyCrm": self.rows_without_key_crm,
        }


@dataclass(frozen=True)
class Options:
    key: Sequence[str] = DEFAULT_KEY
    column_map: Mapping[str, str] = field(default_factory=dict)  # CRM column -> S-360 column
    ignore: Sequence[str] = ()
    numeric_tolerance: float = 0.0
    case_insensitive: Sequence[str] = ()
    # Extra date formats per column (strptime, e.g. "%d.%m.%Y %H:%M"), read as UTC when the
    # text carries no offset; ISO 8601 is always understood.
    date_formats: Mapping[str, str] = field(default_factory=dict)
    memory_limit: str = "1GB"
    threads: int = 2


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _normalized(
    column: str, value: str, *, case_insensitive: bool = False, date_format: str = ""
) -> str:
    """SQL for the comparable form of `value` (the SQL of a raw text value of `column`):
    NULL when empty or unparseable."""
    raw = f"NULLIF(trim({value}), '')"
    if column in AMOUNT_COLUMNS:
        return f"TRY_CAST(replace({raw}, ',', '.') AS DECIMAL(38, 6))"
    if column in INSTANT_COLUMNS or date_format:
        iso = f"TRY_CAST({raw} AS TIMESTAMPTZ)"
        if not date_format:
            return iso
        fmt = "'" + date_format.replace("'", "''") + "'"
        return f"coalesce({iso}, TRY_STRPTIME({raw}, {fmt})::TIMESTAMPTZ)"
    if column in INTEGER_COLUMNS:
        return f"TRY_CAST({raw} AS BIGINT)"
    return f"lower({raw})" if case_insensitive else raw


def _unparseable(column: str, value: str, date_format: str = "") -> str:
    """SQL: true when a typed column holds text that does not parse."""
    if column not in AMOUNT_COLUMNS | INSTANT_COLUMNS | INTEGER_COLUMNS and not date_format:
        return "false"
    normalized = _normalized(column, value, date_format=date_format)
    return f"({normalized} IS NULL AND NULLIF(trim({value}), '') IS NOT NULL)"


def compare(
    s360: FlatFile,
    crm: FlatFile,
    *,
    workdir: Path,
    options: Options,
    on_step: Callable[[str], object] = lambda step: None,
) -> Summary:
    """Compare the two files; write the differences to `workdir/job.duckdb` (table
    `differences`) and return the summary. Raises UnreadableFile with what to fix.
    `on_step` hears of each step as it starts, for progress."""
    key = list(options.key)
    crm_columns = [options.column_map.get(c, c) for c in crm.columns]
    for side, columns in (("S-360", s360.columns), ("CRM", crm_columns)):
        missing = [k for k in key if k not in columns]
        if missing:
            raise UnreadableFile(
                f"The {side} file has no key column {missing}; its columns are {list(columns)}"
                + (" (after the column map)." if side == "CRM" else ".")
            )
    if len(set(crm_columns)) != len(crm_columns):
        raise UnreadableFile(
            f"After the column map the CRM file has a column twice: {crm_columns}. Map each "
            "CRM column to a different S-360 column."
        )
    compared = [
        c for c in s360.columns if c in crm_columns and c not in key and c not in options.ignore
    ]
    # Work in memory (spilling to `workdir/spill` past the limit); only the differences are
    # kept on disk, for paging: writing the loaded files to a database file cost a third.
    db = duckdb.connect(":memory:")
    try:
        db.execute(f"SET memory_limit = '{options.memory_limit}'")
        db.execute(f"SET temp_directory = '{workdir / 'spill'}'")
        db.execute(f"SET threads = {int(options.threads)}")
        db.execute("SET TimeZone = 'UTC'")  # a date without an offset is UTC
        db.execute("SET preserve_insertion_order = false")
        for table, flat, names, label in (
            ("s360", s360, s360.columns, "Reading the S-360 file"),
            ("crm", crm, crm_columns, "Reading the CRM file"),
        ):
            on_step(label)
            _load(db, table, flat, names, key, compared, options)
        on_step("Comparing")
        summary = _diff(db, compared, options)
        skipped = set(key) | set(options.ignore)
        summary.columns_only_in_s360 = [
            c for c in s360.columns if c not in crm_columns and c not in skipped
        ]
        summary.columns_only_in_crm = [
            c for c in crm_columns if c not in s360.columns and c not in skipped
        ]
        db.execute("ATTACH ? AS job", [str(workdir / "job.duckdb")])
        db.execute("CREATE TABLE job.differences AS SELECT * FROM differences ORDER BY k")
        return summary
    except duckdb.Error as error:
        # DuckDB's first line says what is wrong; the rest is SQL and option dumps.
        reason = str(error).split("\n")[0].split(" Original Line:")[0][:300]
        raise UnreadableFile(f"The files could not be read as CSV: {reason}") from None
    finally:
        db.close()


def _load(
    db: duckdb.DuckDBPyConnection,
    table: str,
    flat: FlatFile,
    names: Sequence[str],
    key: Sequence[str],
    compared: Sequence[str],
    options: Options,
) -> None:
    """One pass over the file: the key, a hash of the normalized values (equal rows compare
    by hash), whether any value does not parse, and the raw text for the report. Every value
    is read as text; a short row is padded with NULLs, never shifted."""
    key_text = " || '|' || ".join(f"coalesce(trim(v.{_quote(c)}), '')" for c in key)
    # A row without its key (a blank line, an empty spreadsheet row) cannot be matched.
    key_present = " OR ".join(f"NULLIF(trim(v.{_quote(c)}), '') IS NOT NULL" for c in key)
    values = [f"v.{_quote(c)}" for c in compared]
    formats = options.date_formats
    normalized = [
        _normalized(
            c, v, case_insensitive=c in options.case_insensitive, date_format=formats.get(c, "")
        )
        for c, v in zip(compared, values, strict=True)
    ]
    unparseable = " OR ".join(
        _unparseable(c, v, formats.get(c, "")) for c, v in zip(compared, values, strict=True)
    )
    select = (
        f"CREATE TABLE {table} AS SELECT {key_text} AS k, "
        f"hash({', '.join(normalized) or 'NULL'}) AS h, ({unparseable or 'false'}) AS u, "
        f"({key_present}) AS kp, "
        + ", ".join(f"v.{_quote(c)} AS {_quote('r_' + c)}" for c in compared)
        + " FROM read_csv(?, delim = ?, header = true, all_varchar = true, quote = '\"', "
        "escape = '\"', null_padding = true, strict_mode = false, names = ?, "
        "parallel = {parallel}) v"
    )
    params = [str(flat.path), flat.delimiter, list(names)]
    try:
        db.execute(select.format(parallel="true"), params)
    except duckdb.Error as error:
        # A quoted field holding a line break defeats the parallel scanner: read it in one
        # thread instead (slower, but right).
        if "quoted new lines" not in str(error):
            raise
        db.execute(select.format(parallel="false"), params)


def _diff(db: duckdb.DuckDBPyConnection, compared: list[str], options: Options) -> Summary:
    for side in ("s360", "crm"):
        db.execute(
            f"CREATE TABLE {side}_dupes AS SELECT k, count(*) AS n FROM {side} WHERE kp "
            "GROUP BY k HAVING count(*) > 1"
        )
    db.execute(
        "CREATE TABLE differences (kind VARCHAR, k VARCHAR, column_name VARCHAR, "
        "s360_value VARCHAR, crm_value VARCHAR)"
    )
    db.execute(
        "INSERT INTO differences SELECT 'DUPLICATE_KEY', k, 'S360', n::VARCHAR, NULL "
        "FROM s360_dupes"
    )
    db.execute(
        "INSERT INTO differences SELECT 'DUPLICATE_KEY', k, 'CRM', NULL, n::VARCHAR FROM crm_dupes"
    )
    # Keys seen twice on a side cannot be matched row to row: reported above, left out here.
    # ...on both sides: a key duplicated in S-360 is not "only in the CRM" either.
    db.execute("CREATE TABLE dupes AS SELECT k FROM s360_dupes UNION SELECT k FROM crm_dupes")
    db.execute(
        "CREATE TABLE pairs AS SELECT s.k AS sk, c.k AS ck, s.h <> c.h OR s.u OR c.u AS suspect "
        "FROM (SELECT k, h, u FROM s360 WHERE kp AND k NOT IN (SELECT k FROM dupes)) s "
        "FULL OUTER JOIN (SELECT k, h, u FROM crm WHERE kp AND k NOT IN (SELECT k FROM dupes)) c "
        "ON s.k = c.k"
    )
    db.execute(
        "INSERT INTO differences SELECT 'ONLY_IN_S360', sk, NULL, NULL, NULL FROM pairs "
        "WHERE ck IS NULL"
    )
    db.execute(
        "INSERT INTO differences SELECT 'ONLY_IN_CRM', ck, NULL, NULL, NULL FROM pairs "
        "WHERE sk IS NULL"
    )
    # Only the rows whose hashes differ (about the 1% that changed) are compared column by
    # column, from their raw text.
    db.execute(
        "CREATE TABLE suspects AS SELECT s.k AS k, "
        + ", ".join(
            f"s.{_quote('r_' + c)} AS {_quote('s_' + c)}, "
            f"c.{_quote('r_' + c)} AS {_quote('c_' + c)}"
            for c in compared
        )
        + " FROM (SELECT * FROM s360 WHERE kp) s JOIN (SELECT * FROM crm WHERE kp) c ON s.k = c.k "
        "WHERE s.k IN (SELECT sk FROM pairs WHERE suspect)"
    )
    for col in compared:
        sr, cr = _quote("s_" + col), _quote("c_" + col)
        folded = col in options.case_insensitive
        fmt = options.date_formats.get(col, "")
        sn = _normalized(col, sr, case_insensitive=folded, date_format=fmt)
        cn = _normalized(col, cr, case_insensitive=folded, date_format=fmt)
        unparseable_s, unparseable_c = _unparseable(col, sr, fmt), _unparseable(col, cr, fmt)
        db.execute(
            f"INSERT INTO differences SELECT 'UNPARSEABLE', k, ?, {sr}, {cr} FROM suspects "
            f"WHERE {unparseable_s} OR {unparseable_c}",
            [col],
        )
        if col in AMOUNT_COLUMNS and options.numeric_tolerance:
            differs = (
                f"({sn} IS NULL) <> ({cn} IS NULL) "
                f"OR abs({sn} - {cn}) > {float(options.numeric_tolerance)}"
            )
        else:
            differs = f"{sn} IS DISTINCT FROM {cn}"
        db.execute(
            f"INSERT INTO differences SELECT 'MISMATCH', k, ?, {sr}, {cr} FROM suspects "
            f"WHERE NOT {unparseable_s} AND NOT {unparseable_c} AND {differs}",
            [col],
        )
    summary = Summary()
    summary.s360_rows, summary.rows_without_key_s360 = db.execute(
        "SELECT count(*) FILTER (WHERE kp), count(*) FILTER (WHERE NOT kp) FROM s360"
    ).fetchone()
    summary.crm_rows, summary.rows_without_key_crm = db.execute(
        "SELECT count(*) FILTER (WHERE kp), count(*) FILTER (WHERE NOT kp) FROM crm"
    ).fetchone()
    counts = dict(
        db.execute("SELECT kind, count(DISTINCT k) FROM differences GROUP BY kind").fetchall()
    )
    summary.only_in_s360 = counts.get(Kind.ONLY_IN_S360, 0)
    summary.only_in_crm = counts.get(Kind.ONLY_IN_CRM, 0)
    summary.mismatched = counts.get(Kind.MISMATCH, 0)
    summary.unparseable = counts.get(Kind.UNPARSEABLE, 0)
    summary.duplicate_keys_s360 = db.execute("SELECT count(*) FROM s360_dupes").fetchone()[0]
    summary.duplicate_keys_crm = db.execute("SELECT count(*) FROM crm_dupes").fetchone()[0]
    both = db.execute(
        "SELECT count(*) FROM pairs WHERE sk IS NOT NULL AND ck IS NOT NULL"
    ).fetchone()[0]
    flawed = db.execute(
        "SELECT count(DISTINCT k) FROM differences WHERE kind IN ('MISMATCH', 'UNPARSEABLE')"
    ).fetchone()[0]
    summary.matched = both - flawed
    summary.mismatches_by_column = dict(
        db.execute(
            "SELECT column_name, count(*) FROM differences WHERE kind = 'MISMATCH' "
            "GROUP BY column_name ORDER BY 2 DESC"
        ).fetchall()
    )
    return summary


__all__ = ["DEFAULT_KEY", "EXPORT_COLUMNS", "Kind", "Options", "Summary", "compare"]
