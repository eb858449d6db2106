"""Streamed S-360 flat-file export of 100,000 orders through GET /api/v1/orders/export/:
rows per second, and resident memory sampled while streaming (flat = independent of size).
Run: .venv/bin/python bench/export.py [--orders N]"""

import argparse
import os
import time

from _setup import django_setup

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    label = django_setup("bench_export")

    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from orders.demo import demo_orders
    from orders.services import orders_bulk_upsert

    token = Token.objects.create(user=User.objects.create_user("bench"))
    client = Client(headers={"authorization": f"Token {token.key}"}, HTTP_HOST="localhost")
    loaded = 0
    for size in (args.orders // 10, args.orders):
        # Grow the table to `size` orders, then export all of it.
        batch = []
        for order in demo_orders(size - loaded, ticket_lines=0, start_id=10**10 + loaded):
            batch.append(order)  # the export reads no operations or movements
            if len(batch) == 5000:
                orders_bulk_upsert(orders=batch)
                batch = []
        if batch:
            orders_bulk_upsert(orders=batch)
        loaded = size

        before = peak = rss_mb()
        rows = nbytes = 0
        start = time.perf_counter()
        response = client.get("/api/v1/orders/export/")
        for block in response.streaming_content:
            nbytes += len(block)
            rows += block.count(b"\n")
            peak = max(peak, rss_mb())
        elapsed = time.perf_counter() - start
        rows -= 1  # header
        assert rows == size, (rows, size)
        print(
            f"{label}: exported {rows} rows ({nbytes / 2**20:.1f} MB) in {elapsed:.2f} s = "
            f"{rows / elapsed:,.0f} rows/s; RSS {before:.0f} MB before, peak {peak:.0f} MB "
            f"(+{peak - before:.1f} MB)"
        )


if __name__ == "__main__":
    main()
