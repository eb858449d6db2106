"""The claim query on PostgreSQL with 10 million orders and 1 million pending rows: its plan
(EXPLAIN ANALYZE) must stay an index scan. Run with DATABASE_URL pointing at PostgreSQL:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/claim_explain.py
"""

import argparse
import os
import sys
import time

from _setup import django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the last run's data")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server.")
    django_setup("bench_claim", keep=args.keep)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from orders.models import Order
    from sync.models import PendingOrder
    from sync.outbox import outbox_claim
    from webhooks.models import Endpoint
    from webhooks.services import endpoint_create

    if not args.keep or not Order.objects.exists():
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO orders_order (order_id, order_secret_id, order_state, order_type,
                  order_originator, creation_date_time, contact_reference, sales_channel_code,
                  sales_channel_name, currency_code, currency_fraction_digit, currency_symbol,
                  sale_amount, pre_sale_amount, reservation_amount, option_amount,
                  waiting_account_balance_amount, last_mod_date_time, sync_version, content_hash)
                SELECT 10000000000 + g, '', 'CLOSED', 'SALE', 'TICKETSHOP',
                  now() - g * interval '3 seconds', lpad((g %% 999999)::text, 10, '0'), 'WEB',
                  'Web', 'CHF', 2, 'CHF', 40000, 0, 0, 0, 0, now() - g * interval '2 seconds',
                  1, md5(g::text)
                FROM generate_series(1, %s) AS g
                """,
                [args.orders],
            )
        busy, _ = endpoint_create(data={"name": "busy CRM", "url": "https://crm.example.com/a"})
        quiet, _ = endpoint_create(data={"name": "quiet CRM", "url": "https://crm.example.com/b"})
        with connection.cursor() as cursor:
            # 90% of the pending rows on one endpoint: 4% parked, 10% backing off, some imports.
            cursor.execute(
                """
                INSERT INTO sync_pendingorder (endpoint_id, order_id, version, reason, priority,
                  queued_at, due_at, attempts, last_error, parked_at)
                SELECT CASE WHEN g %% 10 = 0 THEN %s ELSE %s END, 10000000000 + g, 1,
                  CASE WHEN g %% 3 = 0 THEN 'INITIAL_IMPORT' ELSE 'CHANGE' END,
                  CASE WHEN g %% 3 = 0 THEN 1 ELSE 0 END,
                  now() - g * interval '1 second',
                  now() + CASE WHEN g %% 10 = 1 THEN interval '2 hours' ELSE -g * interval '1 second' END,
                  CASE WHEN g %% 25 = 2 THEN 12 ELSE 0 END, '',
                  CASE WHEN g %% 25 = 2 THEN now() ELSE NULL END
                FROM generate_series(1, %s) AS g
                """,
                [quiet.pk, busy.pk, args.pending],
            )
            cursor.execute("ANALYZE")
        print(
            f"loaded {args.orders:,} orders and {args.pending:,} pending rows in "
            f"{time.perf_counter() - start:.0f} s"
        )
    busy = Endpoint.objects.get(name="busy CRM")
    print(f"pending rows: {PendingOrder.objects.count():,}; orders: {Order.objects.count():,}")
    with CaptureQueriesContext(connection) as queries:
        claimed = outbox_claim(endpoint=busy, limit=500, now=timezone.now())
    (sql,) = [q["sql"] for q in queries.captured_queries if "sync_pendingorder" in q["sql"]]
    print(f"claimed {len(claimed)} rows with:\n  {sql}\n")
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        print("\n".join(row[0] for row in cursor.fetchall()))
        cursor.execute("ROLLBACK")


if __name__ == "__main__":
    main()
