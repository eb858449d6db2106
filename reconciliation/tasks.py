from celery import shared_task

from . import services


@shared_task(name="reconciliation.tasks.run_reconciliation", ignore_result=True)
def run_reconciliation(reconciliation_id: int) -> str:
    """Compare the files of one reconciliation (bad files end it FAILED, never the worker)."""
    return services.reconciliation_run(reconciliation_id=reconciliation_id).status
