"""The outbox (what each endpoint still owes the CRM), executions and their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from orders.models import Order
from webhooks.models import Endpoint


class SyncReason(models.TextChoices):
    CHANGE = "CHANGE", "Created or modified"
    INITIAL_IMPORT = "INITIAL_IMPORT", "Initial import"
    RESYNC = "RESYNC", "Re-sync after reconciliation"


# Day-to-day changes go before an initial-import backlog in every execution.
PRIORITY = {SyncReason.CHANGE: 0, SyncReason.RESYNC: 0, SyncReason.INITIAL_IMPORT: 1}


class InitialImport(models.Model):
    """Support staff flagged the orders of a timeframe (or a selection) for one endpoint.

    Progress is read from the outbox rows that carry this import: pending, parked, and the
    rest of what it queued, delivered.
    """

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Not cancelled"
        CANCELLED = "CANCELLED", "Cancelled"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="imports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField()
    created_from = models.DateTimeField(
        null=True, blank=True, help_text="Orders created at or after (inclusive)."
    )
    created_to = models.DateTimeField(null=True, blank=True, help_text="…and before (exclusive).")
    filter_order_types = models.JSONField(default=list, blank=True)
    filter_order_states = models.JSONField(default=list, blank=True)
    filter_sales_channels = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=200, blank=True)
    flagged = models.PositiveIntegerField(default=0, help_text="Orders the import matched.")
    queued = models.PositiveIntegerField(
        default=0, help_text="Of those, the ones this import queued (others were queued already)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    removed = models.PositiveIntegerField(default=0, help_text="Unsent orders the cancel removed.")

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Initial import {self.pk} → {self.endpoint}"


class PendingOrder(models.Model):
    """One order an endpoint has not yet acknowledged, at its newest version.

    Written in the same transaction as the order change; deleted by the ack of a delivery
    whose version is at least this one (so a change made mid-flight is sent again).
    """

    # The (endpoint, order) unique index serves endpoint lookups: no second index to write.
    # No database-level FK constraints on this table (see `order`).
    endpoint = models.ForeignKey(
        Endpoint,
        on_delete=models.CASCADE,
        related_name="pending",
        db_index=False,
        db_constraint=False,
    )
    # No database-level FK constraints: an initial import inserts a million rows in one
    # statement, and the deferred FK checks at commit doubled its time. The rows are made
    # from existing orders and endpoints in the same transaction, Django's collector cascades
    # deletes, and an execution drops rows whose order has gone.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    version = models.PositiveIntegerField()
    reason = models.CharField(max_length=16, choices=SyncReason.choices)
    priority = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField()
    # Backoff lives here, never in Celery countdowns: due again from this instant.
    due_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)
    # The initial import that queued this row, for its progress; kept when the row is updated.
    initial_import = models.ForeignKey(
        InitialImport,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pending",
        db_constraint=False,
    )

    class Meta:
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox (pending and parked orders)"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "order"], name="pending_endpoint_order")
        ]
        indexes = [
            # The claim: this endpoint's unparked rows, changes first, oldest due first.
            models.Index(
                fields=["endpoint", "priority", "due_at"],
                name="pending_claim_idx",
                condition=models.Q(parked_at__isnull=True),
            ),
            models.Index(
                fields=["endpoint", "parked_at"],
                name="pending_parked_idx",
                condition=models.Q(parked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} v{self.version} → {self.endpoint_id}"


class RunTrigger(models.TextChoices):
    SCHEDULE = "SCHEDULE", "Schedule"
    MANUAL = "MANUAL", "Run now"
    COMMAND = "COMMAND", "Command line"


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    PARTIAL = "PARTIAL", "Partly failed"
    FAILED = "FAILED", "Failed"


class SyncRun(models.Model):
    """One execution for one endpoint: claim, send in payloads, acknowledge."""

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    orders_claimed = models.PositiveIntegerField(default=0)
    orders_delivered = models.PositiveIntegerField(default=0)
    orders_failed = models.PositiveIntegerField(default=0)
    payloads = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True, help_text="Why it ended early, if it did.")

    class Meta:
        verbose_name = "execution"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-started_at"], name="run_endpoint_idx")]

    def __str__(self) -> str:
        return f"execution {self.pk} of {self.endpoint_id}"


class Delivery(models.Model):
    """One signed POST of one payload to the CRM, and what came back."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    payload_id = models.CharField(max_length=64, unique=True)
    order_ids = models.JSONField(default=list)
    versions = models.JSONField(default=list)
    attempted_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True, help_text="First 2 KB of the response.")

    class Meta:
        ordering = ["-attempted_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["endpoint", "-attempted_at"], name="delivery_endpoint_idx")]

    def __str__(self) -> str:
        return self.payload_id

    @property
    def order_count(self) -> int:
        return len(self.order_ids)
