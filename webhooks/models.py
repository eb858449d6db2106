"""CRM webhook endpoints: where orders are pushed, how often, in what batches, signed how."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from . import crypto

# Defaults and limits of S-360's outbound synchronization.
DEFAULT_FREQUENCY_MINUTES = 15
MAX_FREQUENCY_MINUTES = 1440
MAX_ORDERS_PER_RUN = 500
MAX_ORDERS_PER_PAYLOAD = 50
DEFAULT_MAX_ATTEMPTS = 12


class ContentLevel(models.TextChoices):
    """S-360's content levels, each adding detail: OPERATIONS ⊂ MOVEMENTS ⊂ TICKETS."""

    OPERATIONS = "OPERATIONS", "Operations"
    MOVEMENTS = "MOVEMENTS", "Operations and movements"
    TICKETS = "TICKETS", "Operations, movements and tickets"


class AuthType(models.TextChoices):
    NONE = "NONE", "Signature only"
    BASIC = "BASIC", "HTTP Basic"
    BEARER = "BEARER", "Bearer token"
    HEADER = "HEADER", "Custom header"


HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection"}
)


def new_signing_secret() -> str:
    """Return a fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Endpoint(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField("URL", max_length=2000)
    is_active = models.BooleanField(
        "active", default=True, help_text="Off: paused; changes are kept and sent on resume."
    )
    disabled_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the sync engine switched it off (410 Gone)."
    )
    frequency_minutes = models.PositiveIntegerField(
        default=DEFAULT_FREQUENCY_MINUTES,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_FREQUENCY_MINUTES)],
        help_text="Minutes between executions, 1 to 1440.",
    )
    max_orders_per_run = models.PositiveIntegerField(
        "max orders per execution",
        default=MAX_ORDERS_PER_RUN,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ORDERS_PER_RUN)],
    )
    orders_per_payload = models.PositiveIntegerField(
        "orders per payload",
        default=MAX_ORDERS_PER_PAYLOAD,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ORDERS_PER_PAYLOAD)],
    )
    content_level = models.CharField(
        max_length=16, choices=ContentLevel.choices, default=ContentLevel.TICKETS
    )
    filter_order_types = models.JSONField(
        default=list, blank=True, help_text="Only these orderTypes (empty: all)."
    )
    filter_order_states = models.JSONField(
        default=list, blank=True, help_text="Only these orderStates (empty: all)."
    )
    filter_sales_channels = models.JSONField(
        default=list, blank=True, help_text="Only these salesChannelCodes (empty: all)."
    )
    max_attempts = models.PositiveIntegerField(
        default=DEFAULT_MAX_ATTEMPTS,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Failed sends of an order before it is parked (12 is about four days).",
    )
    auth_type = models.CharField(max_length=8, choices=AuthType.choices, default=AuthType.NONE)
    auth_username = models.CharField(
        max_length=200, blank=True, help_text="Basic: the user name. Custom header: its name."
    )
    auth_secret_encrypted = models.TextField(blank=True, editable=False)
    signing_secret_encrypted = models.TextField(editable=False)

    next_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    # One execution per endpoint at a time: the execution holding the lease, until when.
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The CRM answered 429/503 with Retry-After: nothing is sent to it before then, neither by
    # the schedule nor by "run now".
    wait_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(
        excluded_fields=[
            "auth_secret_encrypted",
            "signing_secret_encrypted",
            "next_sync_at",
            "last_run_at",
            "lease_owner",
            "lease_until",
            "wait_until",
        ]
    )

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["is_active", "next_sync_at"], name="endpoint_due_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def waiting_until(self) -> dt.datetime | None:
        """Until when the CRM asked us to wait (Retry-After), if that is still ahead."""
        if self.wait_until and self.wait_until > timezone.now():
            return self.wait_until
        return None

    @property
    def waiting_notice(self) -> str | None:
        """What "run now" answers while the CRM's wait runs (API and admin alike)."""
        if until := self.waiting_until:
            return (
                f"The CRM asked us to wait until {until:%Y-%m-%d %H:%M:%S} UTC (Retry-After); "
                "the next execution runs then."
            )
        return None

    @property
    def signing_secret(self) -> str:
        return crypto.decrypt(self.signing_secret_encrypted)

    @signing_secret.setter
    def signing_secret(self, value: str) -> None:
        self.signing_secret_encrypted = crypto.encrypt(value)

    @property
    def auth_secret(self) -> str:
        return crypto.decrypt(self.auth_secret_encrypted)

    @auth_secret.setter
    def auth_secret(self, value: str) -> None:
        self.auth_secret_encrypted = crypto.encrypt(value)

    def clean(self) -> None:
        """Extra authentication must fit in an HTTP header, and not replace a signed one."""
        errors: dict[str, str] = {}
        if self.auth_type == AuthType.HEADER:
            name = self.auth_username
            if not HEADER_NAME.fullmatch(name):
                errors["auth_username"] = "A header name: letters, digits and - only."
            elif name.lower() in RESERVED_HEADERS or name.lower().startswith("webhook-"):
                errors["auth_username"] = f"{name} is set by the sync engine itself."
        if self.auth_type != AuthType.NONE:
            try:
                auth_secret = self.auth_secret
            except ValueError:
                # Stored under a key that is gone: it was checked when it was stored, and a
                # send reports it; editing other settings (or entering it again) must work.
                auth_secret = ""
            for field, value in (
                ("auth_username", self.auth_username),
                ("auth_secret", auth_secret),
            ):
                if field not in errors and not HEADER_VALUE.fullmatch(value or ""):
                    errors[field] = "Printable ASCII only: it travels in an HTTP header."
        if errors:
            raise ValidationError(errors)

    def is_due(self, now: dt.datetime | None = None) -> bool:
        """Return whether a scheduled execution should start now."""
        now = now or timezone.now()
        return self.is_active and (self.next_sync_at is None or self.next_sync_at <= now)

    def accepts(self, order_type: str, order_state: str, sales_channel_code: str) -> bool:
        """Return whether an order with these values passes the endpoint's filters."""
        return (
            (not self.filter_order_types or order_type in self.filter_order_types)
            and (not self.filter_order_states or order_state in self.filter_order_states)
            and (not self.filter_sales_channels or sales_channel_code in self.filter_sales_channels)
        )
