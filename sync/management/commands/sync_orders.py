from django.core.management.base import BaseCommand, CommandError, CommandParser

from sync.models import RunTrigger
from sync.services import execution_run
from webhooks.models import Endpoint


class Command(BaseCommand):
    help = "Run one execution now, in this process, for one endpoint or every active one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", type=int, help="Endpoint id (default: all active).")

    def handle(self, *args: object, endpoint: int | None, **options: object) -> None:
        if endpoint is not None:
            if not Endpoint.objects.filter(pk=endpoint).exists():
                raise CommandError(f"No endpoint {endpoint}.")
            ids = [endpoint]
        else:
            ids = list(Endpoint.objects.filter(is_active=True).values_list("pk", flat=True))
        if not ids:
            self.stdout.write("No active endpoint.")
        for endpoint_id in ids:
            run = execution_run(endpoint_id=endpoint_id, trigger=RunTrigger.COMMAND)
            if run is None:
                self.stdout.write(
                    f"endpoint {endpoint_id}: skipped (paused, another execution is running, "
                    "or the CRM asked to wait: see its waitUntil)"
                )
                continue
            self.stdout.write(
                f"endpoint {endpoint_id} execution {run.pk}: {run.status}; "
                f"claimed {run.orders_claimed}, delivered {run.orders_delivered}, "
                f"failed {run.orders_failed}, in {run.payloads} payloads"
                + (f" ({run.note})" if run.note else "")
            )
