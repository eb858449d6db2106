from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sync.services import deliveries_prune


class Command(BaseCommand):
    help = "Delete deliveries older than --days (default DELIVERY_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: object, days: int | None, **options: object) -> None:
        days = settings.DELIVERY_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        deleted = deliveries_prune(older_than_days=days)
        self.stdout.write(f"Deleted {deleted} deliveries older than {days} days.")
