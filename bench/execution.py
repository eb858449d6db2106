"""One execution of 500 orders (3 operations, 6 movements each) to a local receiver that
answers at once: wall time and SQL queries. Run: .venv/bin/python bench/execution.py"""

import argparse
import http.server
import threading
import time

from _setup import django_setup


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    label = django_setup("bench_execution")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.demo import demo_orders
    from orders.services import orders_bulk_upsert
    from sync.services import execution_run
    from webhooks.services import endpoint_create

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint, _ = endpoint_create(
        data={"name": "bench", "url": f"http://127.0.0.1:{server.server_port}/hook"}
    )

    def shaped(orders):  # 3 operations and 6 movements per order
        for o in orders:
            o["operations"].append(
                dict(o["operations"][0], operation_id=o["operations"][0]["operation_id"] + 50)
            )
            o["movements"].extend(
                dict(m, movement_id=m["movement_id"] + 5000) for m in list(o["movements"])
            )
            yield o

    times = []
    for i in range(args.repeat):
        orders_bulk_upsert(
            orders=list(
                shaped(demo_orders(args.orders, ticket_lines=1, start_id=10**10 + i * 10**6))
            )
        )
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            run = execution_run(endpoint_id=endpoint.pk)
            times.append(time.perf_counter() - start)
        assert run.orders_delivered == args.orders, run.note
    print(
        f"{label}: one execution of {args.orders} orders in {run.payloads} payloads: "
        f"best {min(times):.3f} s, median {sorted(times)[len(times) // 2]:.3f} s "
        f"over {args.repeat} runs; {len(queries)} SQL queries"
    )
    server.shutdown()


if __name__ == "__main__":
    main()
