from django.core.management.base import BaseCommand, CommandParser

from orders.demo import demo_orders
from orders.models import Order
from orders.services import orders_bulk_upsert

BATCH = 1000


class Command(BaseCommand):
    help = "Load realistic S-360-like demo orders (channels, currencies, refunds, multi-line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=500, help="How many (default 500).")
        parser.add_argument("--seed", type=int, default=360, help="Random seed (default 360).")

    def handle(self, *args: object, orders: int, seed: int, **options: object) -> None:
        if orders < 0:
            self.stderr.write("--orders must be zero or more.")
            raise SystemExit(2)
        # Continue after the highest demo id so a second run adds orders instead of editing them.
        start = max(
            Order.objects.order_by("-order_id").values_list("order_id", flat=True)[:1] or [0]
        )
        start = max(start + 1, 10_000_700_000)
        batch, created = [], 0
        for order in demo_orders(orders, seed=seed, start_id=start):
            batch.append(order)
            if len(batch) == BATCH:
                created += orders_bulk_upsert(orders=batch).count("created")
                batch = []
        if batch:
            created += orders_bulk_upsert(orders=batch).count("created")
        self.stdout.write(self.style.SUCCESS(f"Seeded {created} demo orders."))
