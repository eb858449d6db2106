"""Bulk upsert of 10,000 orders (3 operations, 6 movements each): through the service, and
through the REST API in requests of 1000. Run: .venv/bin/python bench/bulk_upsert.py"""

import argparse
import json
import time

from _setup import django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    label = django_setup("bench_bulk_upsert")

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from orders.demo import demo_order_json, demo_orders
    from orders.services import orders_bulk_upsert
    from webhooks.services import endpoint_create

    # One CRM endpoint, as in production: every change is also written to its outbox.
    endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})

    # The shape, 3 operations and 6 movements: one ticket line (3 movements) and its
    # charges line, plus a second ticket line with 3 more movements.
    orders = list(demo_orders(args.orders, ticket_lines=1))
    for o in orders:  # pad to exactly 3 operations and 6 movements per order
        extra = dict(o["operations"][0], operation_id=o["operations"][0]["operation_id"] + 50)
        o["operations"].append(extra)
        o["movements"].extend(
            dict(m, movement_id=m["movement_id"] + 5000) for m in list(o["movements"])
        )
    ops = sum(len(o["operations"]) for o in orders) / len(orders)
    mvs = sum(len(o["movements"]) for o in orders) / len(orders)

    def service_run(batch: list) -> float:
        start = time.perf_counter()
        for i in range(0, len(batch), 1000):
            orders_bulk_upsert(orders=batch[i : i + 1000])
        return time.perf_counter() - start

    created = service_run(orders)
    unchanged = service_run(orders)
    for o in orders:
        o["order_state"] = "CANCELLED" if o["order_state"] != "CANCELLED" else "CLOSED"
        o["last_mod_date_time"] = None
    changed = service_run(orders)

    # Through the API: a second set of ids, JSON bodies of 1000 orders, token auth.
    api_orders = list(demo_orders(args.orders, ticket_lines=1, start_id=20_000_000_000))
    for o in api_orders:
        extra = dict(o["operations"][0], operation_id=o["operations"][0]["operation_id"] + 50)
        o["operations"].append(extra)
        o["movements"].extend(
            dict(m, movement_id=m["movement_id"] + 5000) for m in list(o["movements"])
        )
    bodies = [
        json.dumps([demo_order_json(o) for o in api_orders[i : i + 1000]])
        for i in range(0, len(api_orders), 1000)
    ]
    user = User.objects.create_user("bench")
    token = Token.objects.create(user=user)
    client = Client(headers={"authorization": f"Token {token.key}"}, HTTP_HOST="localhost")
    start = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/orders/bulk/", body, content_type="application/json")
        assert response.status_code == 200, response.content[:500]
    api = time.perf_counter() - start

    n = len(orders)
    print(
        f"database: {label}; {n} orders, {ops:.0f} operations and {mvs:.0f} movements each; "
        "one endpoint (outbox rows written in the same transaction)"
    )
    print(f"service, new orders:       {created:6.2f} s  {n / created:8.0f} orders/s")
    print(f"service, identical resave: {unchanged:6.2f} s  {n / unchanged:8.0f} orders/s")
    print(f"service, every order changed: {changed:6.2f} s  {n / changed:8.0f} orders/s")
    print(
        f"API POST /orders/bulk/ (1000 per request, new orders): {api:6.2f} s  {n / api:8.0f} orders/s"
    )
    connection.close()


if __name__ == "__main__":
    main()
