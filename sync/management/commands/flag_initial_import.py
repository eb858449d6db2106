import datetime as dt

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from sync import imports
from webhooks.models import Endpoint


def _instant(text: str) -> dt.datetime:
    value = parse_datetime(text)
    if value is None:
        raise CommandError(f"{text!r} is not a date (2026-01-31) or a datetime (2026-01-31T08:00).")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Flag every order created in [--from, --to) for an endpoint (initial import). Dates "
        "are midnight UTC; datetimes may carry an offset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", type=int, required=True)
        parser.add_argument("--from", dest="start", required=True, help="Inclusive.")
        parser.add_argument("--to", dest="end", required=True, help="Exclusive.")
        parser.add_argument("--type", action="append", default=[], help="orderType; repeatable.")
        parser.add_argument("--state", action="append", default=[], help="orderState; repeatable.")
        parser.add_argument("--channel", action="append", default=[], help="Sales channel code.")
        parser.add_argument("--dry-run", action="store_true", help="Count and estimate only.")

    def handle(self, *args: object, **options: object) -> None:
        endpoint = Endpoint.objects.filter(pk=options["endpoint"]).first()
        if endpoint is None:
            raise CommandError(f"No endpoint {options['endpoint']}.")
        timeframe = {
            "created_from": _instant(str(options["start"])),
            "created_to": _instant(str(options["end"])),
            "order_types": options["type"],
            "order_states": options["state"],
            "sales_channels": options["channel"],
        }
        if timeframe["created_from"] >= timeframe["created_to"]:
            raise CommandError("--from must be before --to.")
        if options["dry_run"]:
            estimate = imports.initial_import_estimate(
                endpoint=endpoint, orders=imports.timeframe_orders(**timeframe)
            )
            self.stdout.write(
                f"{estimate.orders} orders would be flagged for {endpoint.name} "
                f"({estimate.backlog} already pending): {estimate.executions} executions"
                + (f", done about {estimate.eta:%Y-%m-%d %H:%M} UTC" if estimate.eta else "")
            )
            return
        try:
            record = imports.initial_import_create(endpoint=endpoint, **timeframe)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        progress = imports.initial_import_progress(record)
        self.stdout.write(
            self.style.SUCCESS(
                f"Initial import {record.pk}: {record.flagged} orders flagged for "
                f"{endpoint.name} ({record.queued} newly queued)"
                + (f", done about {progress.eta:%Y-%m-%d %H:%M} UTC" if progress.eta else "")
            )
        )
