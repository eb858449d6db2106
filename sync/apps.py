from django.apps import AppConfig


class SyncConfig(AppConfig):
    """Outbox, dispatcher, executions and deliveries. Built by the sync issue."""

    name = "sync"
    verbose_name = "Synchronization"
