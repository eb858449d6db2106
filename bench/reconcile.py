"""Reconciliation of two flat files of N rows x 11 columns (S-360 export format), about 1%
missing on each side and 1% changed: our DuckDB engine, and in the same run the same
comparison with a plain pandas merge and with datacompy. Each in a fresh process, so each
peak RSS is its own.

  .venv/bin/pip install -r bench/requirements.txt   # pandas, datacompy (bench only)
  .venv/bin/python bench/reconcile.py --rows 1000000
  .venv/bin/python bench/reconcile.py --rows 10000000 --skip-others
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "ORDER_ID;ORDER_STATE;ORDER_TYPE;ORDER_ORIGINATOR;CONTACT_NUMBER;SALES_CHANNEL_CODE;"
    "CURRENCY;SALE_AMOUNT;CREATION_DATE;LAST_MOD_DATE;SYNC_VERSION"
)


def make_files(rows: int, folder: Path) -> tuple[Path, Path]:
    """Two exports: the CRM misses every 100th row, has 1% extra rows, and 1% changed values
    (state, amount written `40,00`-style, or a version)."""
    import duckdb

    s360, crm = folder / f"s360-{rows}.csv", folder / f"crm-{rows}.csv"
    if s360.exists() and crm.exists():
        return s360, crm
    db = duckdb.connect()
    base = f"""
        SELECT 10000000000 + i AS ORDER_ID,
          CASE WHEN i % 7 = 0 THEN 'CANCELLED' ELSE 'CLOSED' END AS ORDER_STATE,
          CASE WHEN i % 11 = 0 THEN 'REFUND_CLIENT' ELSE 'SALE' END AS ORDER_TYPE,
          'TICKETSHOP' AS ORDER_ORIGINATOR, lpad((i % 999983)::VARCHAR, 10, '0') AS CONTACT_NUMBER,
          'WEB' AS SALES_CHANNEL_CODE, 'CHF' AS CURRENCY,
          printf('%.2f', (i % 500) * 1.5) AS SALE_AMOUNT,
          strftime(TIMESTAMP '2026-01-01' + INTERVAL (i) SECOND, '%Y-%m-%dT%H:%M:%S+00:00') AS CREATION_DATE,
          strftime(TIMESTAMP '2026-01-01' + INTERVAL (i + 60) SECOND, '%Y-%m-%dT%H:%M:%S+00:00') AS LAST_MOD_DATE,
          1 + i % 3 AS SYNC_VERSION
        FROM range({rows}) t(i)"""
    db.execute(f"COPY ({base}) TO '{s360}' (HEADER, DELIMITER ';')")
    db.execute(
        f"""COPY (
          SELECT ORDER_ID,
            CASE WHEN i % 100 = 17 THEN 'ABANDONED' ELSE ORDER_STATE END AS ORDER_STATE,
            ORDER_TYPE, ORDER_ORIGINATOR, CONTACT_NUMBER, SALES_CHANNEL_CODE, CURRENCY,
            replace(SALE_AMOUNT, '.', ',') AS SALE_AMOUNT, CREATION_DATE, LAST_MOD_DATE,
            SYNC_VERSION
          FROM ({base.replace("FROM range", ", i AS i FROM range")}) WHERE i % 100 <> 3
          UNION ALL
          SELECT 90000000000 + i, 'CLOSED', 'SALE', 'DESK', '0000000001', 'BOX', 'CHF', '1,00',
            '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 1
          FROM range({rows // 100}) t(i)
        ) TO '{crm}' (HEADER, DELIMITER ';')"""
    )
    return s360, crm


def run_ours(s360: Path, crm: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from reconciliation.engine import Options, compare
    from reconciliation.reading import open_flat_file

    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        summary = compare(
            open_flat_file(s360, workdir, name="S-360"),
            open_flat_file(crm, workdir, name="CRM"),
            workdir=workdir,
            options=Options(memory_limit="900MB"),
        )
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "summary": summary.as_api()}


def _read(path: Path):
    import pandas as pd

    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def run_pandas(s360: Path, crm: Path) -> dict:
    import pandas as pd

    start = time.perf_counter()
    left, right = _read(s360), _read(crm)
    for frame in (left, right):
        frame["SALE_AMOUNT"] = pd.to_numeric(frame["SALE_AMOUNT"].str.replace(",", "."))
        for col in ("CREATION_DATE", "LAST_MOD_DATE"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
    merged = left.merge(right, on="ORDER_ID", how="outer", suffixes=("_s", "_c"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    columns = [c for c in left.columns if c != "ORDER_ID"]
    differs = pd.Series(False, index=both.index)
    for col in columns:
        differs |= both[f"{col}_s"].ne(both[f"{col}_c"])
    result = {
        "onlyInS360": int((merged["_merge"] == "left_only").sum()),
        "onlyInCrm": int((merged["_merge"] == "right_only").sum()),
        "mismatched": int(differs.sum()),
    }
    return {"seconds": time.perf_counter() - start, "summary": result}


def run_datacompy(s360: Path, crm: Path) -> dict:
    import datacompy
    import pandas as pd

    start = time.perf_counter()
    left, right = _read(s360), _read(crm)
    for frame in (left, right):
        frame["SALE_AMOUNT"] = pd.to_numeric(frame["SALE_AMOUNT"].str.replace(",", "."))
    compare_class = getattr(datacompy, "PandasCompare", None) or datacompy.Compare
    compare = compare_class(left, right, join_columns="ORDER_ID")
    result = {
        "onlyInS360": len(compare.df1_unq_rows),
        "onlyInCrm": len(compare.df2_unq_rows),
        "mismatched": len(compare.all_mismatch()),
    }
    return {"seconds": time.perf_counter() - start, "summary": result}


def child(which: str, s360: Path, crm: Path) -> None:
    result = {"ours": run_ours, "pandas": run_pandas, "datacompy": run_datacompy}[which](s360, crm)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-others", action="store_true", help="only our engine")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.files[0]), Path(args.files[1]))
        return
    folder = Path(tempfile.gettempdir()) / "s360-bench"
    folder.mkdir(exist_ok=True)
    s360, crm = make_files(args.rows, folder)
    size = (s360.stat().st_size + crm.stat().st_size) / 2**20
    print(f"{args.rows:,} rows x 11 columns a side ({size:,.0f} MB of CSV in all)")
    engines = ["ours"] if args.skip_others else ["ours", "pandas", "datacompy"]
    for which in engines:
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--child", which, "--files", str(s360), str(crm)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(f"{which:10s} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{which:10s} {result['seconds']:7.2f} s   peak RSS {result['peak_rss_mb']:7.0f} MB   "
            f"{json.dumps(result['summary'])}"
        )


if __name__ == "__main__":
    main()
