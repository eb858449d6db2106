"""A data consistency check between S-360 (this database) and a CRM: two flat files, the
differences found, and what was re-sent."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Reconciliation(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    crm_file = models.FileField(upload_to="reconciliations/%Y/%m/")
    s360_file = models.FileField(
        upload_to="reconciliations/%Y/%m/",
        blank=True,
        help_text="Empty: generated from this database when the comparison starts.",
    )
    key_columns = models.JSONField(default=list)
    column_map = models.JSONField(default=dict, blank=True)
    ignore_columns = models.JSONField(default=list, blank=True)
    case_insensitive_columns = models.JSONField(default=list, blank=True)
    numeric_tolerance = models.FloatField(default=0.0)
    date_formats = models.JSONField(
        default=dict, blank=True, help_text='Per column, e.g. {"CREATION_DATE": "%d.%m.%Y %H:%M"}.'
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    progress = models.CharField(max_length=100, blank=True, help_text="The step running now.")
    error = models.TextField(blank=True, help_text="What to fix, when the comparison failed.")
    summary = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resynced = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Reconciliation {self.pk}"


class Difference(models.Model):
    class Kind(models.TextChoices):
        ONLY_IN_S360 = "ONLY_IN_S360", "Only in S-360"
        ONLY_IN_CRM = "ONLY_IN_CRM", "Only in the CRM"
        MISMATCH = "MISMATCH", "Fields differ"
        UNPARSEABLE = "UNPARSEABLE", "Unparseable value"
        DUPLICATE_KEY = "DUPLICATE_KEY", "Duplicate key"

    reconciliation = models.ForeignKey(
        Reconciliation, on_delete=models.CASCADE, related_name="differences", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=200)
    column = models.CharField(max_length=200, blank=True)
    # NULL: the side has no value (row missing); "": the side's value is empty.
    s360_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    crm_value = models.TextField(null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["reconciliation", "key", "id"]
        indexes = [
            models.Index(fields=["reconciliation", "kind", "key"], name="difference_kind_idx"),
            models.Index(fields=["reconciliation", "column"], name="difference_column_idx"),
            models.Index(fields=["reconciliation", "key"], name="difference_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} {self.column}"
