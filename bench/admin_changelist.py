"""The order admin changelist at a million orders: time of the first page, a filtered page,
a search, and the change page of one order. Run: .venv/bin/python bench/admin_changelist.py"""

import argparse
import time

from _setup import django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the last run's database")
    args = parser.parse_args()
    label = django_setup("bench_admin", keep=args.keep)

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from orders.demo import demo_orders
    from orders.models import Order
    from orders.services import orders_bulk_upsert

    start = time.perf_counter()
    batch = []
    loaded = Order.objects.count()
    for order in demo_orders(
        args.orders - min(loaded, args.orders),
        ticket_lines=0,
        seed=7,
        start_id=10_000_700_000 + loaded,
    ):
        batch.append(order)
        if len(batch) == 10_000:
            orders_bulk_upsert(orders=batch)
            batch = []
    if batch:
        orders_bulk_upsert(orders=batch)
    # a few complete orders to open
    orders_bulk_upsert(orders=list(demo_orders(10, start_id=90_000_000_000)))
    for order in demo_orders(1, start_id=10_000_700_000 + args.orders - 1, seed=7):
        contact = order["contact_reference"] or "0000000001"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{label}: loaded {args.orders:,} orders in {time.perf_counter() - start:.0f} s")

    admin = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "b@example.com", "pw"
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    pages = {
        "changelist, first page": "/admin/orders/order/",
        "changelist, page 50": "/admin/orders/order/?p=50",
        "filter state=CANCELLED": "/admin/orders/order/?order_state__exact=CANCELLED",
        "filter channel=GROUPS + type": "/admin/orders/order/?channel=GROUPS&order_type__exact=SALE",
        "filter created past 7 days": "/admin/orders/order/?creation_date_time__gte=2026-11-26+00%3A00%3A00%2B00%3A00",
        "search orderId": "/admin/orders/order/?q=10000950000",
        "search contact": f"/admin/orders/order/?q={contact}",
        "change page (operations, movements)": "/admin/orders/order/90000000003/change/",
    }
    for name, url in pages.items():
        client.get(url)  # warm
        times = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                t = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t)
            assert response.status_code == 200, (url, response.status_code)
        print(f"  {name:40s} {min(times) * 1000:7.0f} ms  ({len(queries)} queries)")


if __name__ == "__main__":
    main()
