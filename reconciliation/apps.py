from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """Comparison of the S-360 and CRM flat-file exports. Built by the reconciliation issue."""

    name = "reconciliation"
    verbose_name = "Reconciliation"
