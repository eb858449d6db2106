"""Writes to endpoints: create (a new signing secret, shown once), update, pause, rotate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import AuthType, Endpoint, new_signing_secret
from .url_safety import UnsafeURL, check_url


def _check_url(url: str) -> None:
    try:
        check_url(url)
    except UnsafeURL as error:
        raise ValidationError({"url": [str(error)]}) from None


def endpoint_create(*, data: dict[str, Any]) -> tuple[Endpoint, str]:
    """Create an endpoint with a fresh signing secret; return it with the secret in clear,
    which is never readable again."""
    data = dict(data)
    auth_secret = data.pop("auth_secret", "")
    _check_url(data["url"])
    endpoint = Endpoint(**data)
    secret = new_signing_secret()
    endpoint.signing_secret = secret
    endpoint.auth_secret = auth_secret or ""
    endpoint.full_clean(exclude=["signing_secret_encrypted"])
    endpoint.save()
    return endpoint, secret


def endpoint_update(*, endpoint: Endpoint, data: dict[str, Any]) -> Endpoint:
    """Change an endpoint's settings. A new frequency applies from the next dispatcher tick."""
    data = dict(data)
    auth_secret = data.pop("auth_secret", None)
    if "url" in data and data["url"] != endpoint.url:
        _check_url(data["url"])
    old_frequency = endpoint.frequency_minutes
    for name, value in data.items():
        setattr(endpoint, name, value)
    if auth_secret:  # blank keeps the stored one
        endpoint.auth_secret = auth_secret
    if endpoint.auth_type == AuthType.NONE:
        # No authentication: keep no secret (nor one a later key rotation could not read).
        endpoint.auth_secret_encrypted = ""
    if endpoint.is_active:
        endpoint.disabled_reason = ""
    if endpoint.frequency_minutes != old_frequency and endpoint.next_sync_at:
        since = endpoint.last_run_at or timezone.now()
        endpoint.next_sync_at = min(
            endpoint.next_sync_at, since + dt.timedelta(minutes=endpoint.frequency_minutes)
        )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def endpoint_set_active(*, endpoint: Endpoint, active: bool) -> Endpoint:
    """Pause (changes keep queueing) or resume (also after a 410 switched it off)."""
    return endpoint_update(endpoint=endpoint, data={"is_active": active})


def endpoint_rotate_secret(*, endpoint: Endpoint) -> str:
    """Replace the signing secret; return the new one in clear (shown once)."""
    secret = new_signing_secret()
    with transaction.atomic():
        endpoint.signing_secret = secret
        endpoint.save(update_fields=["signing_secret_encrypted"])
    return secret
