"""The demo CRM's own data: its records use CRM-style names, not S-360's."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Receiver(models.Model):
    """The receiver's configuration (one row): the signing secret it trusts, fault knobs."""

    signing_secret = models.CharField(
        max_length=200, blank=True, help_text="The endpoint's whsec_… secret."
    )
    failure_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of deliveries answered 500, for demos (0 to 1).",
    )
    latency_ms = models.PositiveIntegerField(default=0, help_text="Delay before answering.")

    def __str__(self) -> str:
        return "Demo CRM receiver"

    @classmethod
    def current(cls) -> "Receiver":
        return cls.objects.order_by("pk").first() or cls.objects.create()


class CrmOrder(models.Model):
    """An order as the CRM keeps it, keyed by the S-360 order number."""

    s360_order_number = models.BigIntegerField(unique=True)
    sync_version = models.PositiveIntegerField()
    status = models.CharField(max_length=32)
    order_kind = models.CharField(max_length=32)
    origin = models.CharField(max_length=32)
    customer_number = models.CharField(max_length=32, blank=True)
    channel = models.CharField(max_length=32)
    currency = models.CharField(max_length=8)
    total = models.DecimalField(max_digits=18, decimal_places=3)
    ordered_on = models.DateTimeField()
    modified_on = models.DateTimeField()
    line_count = models.PositiveIntegerField(default=0)
    seat_count = models.PositiveIntegerField(default=0)
    last_sync_reason = models.CharField(max_length=16)
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "CRM order"

    def __str__(self) -> str:
        return f"CRM order {self.s360_order_number}"
