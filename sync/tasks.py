"""Celery entry points: thin, they load ids and call services."""

from celery import shared_task

from . import services
from .models import RunTrigger

DISPATCHER_TASK = "sync.tasks.dispatch_due_endpoints"


@shared_task(name=DISPATCHER_TASK, ignore_result=True)
def dispatch_due_endpoints() -> int:
    """Every minute (django-celery-beat): queue an execution of each endpoint that is due."""
    due = services.endpoints_claim_due()
    for endpoint_id in due:
        run_endpoint.delay(endpoint_id, RunTrigger.SCHEDULE)
    return len(due)


@shared_task(name="sync.tasks.run_endpoint", ignore_result=True)
def run_endpoint(endpoint_id: int, trigger: str = RunTrigger.SCHEDULE) -> int | None:
    """One execution for one endpoint; another one already running makes this a no-op."""
    run = services.execution_run(endpoint_id=endpoint_id, trigger=trigger)
    return run.pk if run else None


@shared_task(name="sync.tasks.prune_deliveries", ignore_result=True)
def prune_deliveries() -> int:
    """Daily: drop the delivery log past DELIVERY_RETENTION_DAYS."""
    from django.conf import settings

    return services.deliveries_prune(older_than_days=settings.DELIVERY_RETENTION_DAYS)
