"""Flag 1,000,000 orders for an initial import (set-based INSERT ... SELECT), on SQLite or
PostgreSQL (DATABASE_URL). Run: .venv/bin/python bench/initial_import.py [--keep]"""

import argparse
import datetime as dt
import time

from _setup import django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the last run's orders")
    args = parser.parse_args()
    label = django_setup("bench_import", keep=args.keep)

    from django.db import connection

    from orders.models import Order
    from sync.imports import initial_import_create, initial_import_progress
    from sync.models import InitialImport, PendingOrder
    from webhooks.models import Endpoint
    from webhooks.services import endpoint_create

    if Order.objects.count() != args.orders:
        start = time.perf_counter()
        Order.objects.all().delete()
        series = (
            "generate_series(1, %s) AS s(g)"
            if connection.vendor == "postgresql"
            else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
            "SELECT g FROM s) AS s"
        )
        created = (
            "now() - g * interval '1 minute'"
            if connection.vendor == "postgresql"
            else "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || g || ' minutes')"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO orders_order (order_id, order_secret_id, order_state, order_type,
                  order_originator, creation_date_time, contact_reference, sales_channel_code,
                  sales_channel_name, currency_code, currency_fraction_digit, currency_symbol,
                  sale_amount, pre_sale_amount, reservation_amount, option_amount,
                  waiting_account_balance_amount, last_mod_date_time, sync_version, content_hash)
                SELECT 10000000000 + g, '', 'CLOSED', 'SALE', 'TICKETSHOP', {created},
                  '0000000042', 'WEB', 'Web', 'CHF', 2, 'CHF', 40000, 0, 0, 0, 0, {created}, 1, ''
                FROM {series}
                """,
                [args.orders],
            )
            cursor.execute("ANALYZE")
        print(f"{label}: loaded {args.orders:,} orders in {time.perf_counter() - start:.0f} s")
    PendingOrder.objects.all().delete()
    InitialImport.objects.all().delete()
    Endpoint.objects.all().delete()
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "https://crm.example.com/hook"})
    now = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    record = initial_import_create(
        endpoint=endpoint, created_from=now - dt.timedelta(days=3650), created_to=now
    )
    elapsed = time.perf_counter() - start
    progress = initial_import_progress(record)
    print(
        f"{label}: flagged {record.flagged:,} orders in {elapsed:.1f} s "
        f"({record.flagged / elapsed:,.0f} orders/s); pending {progress.pending:,}, "
        f"ETA {progress.eta:%Y-%m-%d %H:%M} UTC at 500 per 15 minutes"
    )
    start = time.perf_counter()
    flagged_again = initial_import_create(
        endpoint=endpoint, created_from=now - dt.timedelta(days=3650), created_to=now
    )
    print(
        f"{label}: the same timeframe again (overlap, nothing new queued): "
        f"{time.perf_counter() - start:.1f} s, queued {flagged_again.queued}"
    )


if __name__ == "__main__":
    main()
