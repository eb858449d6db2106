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
    """Change an endpoint's settings. A new frequency applies from the next dispatcher tick.

    The caller's instance may be stale (loaded for the form, or already carrying the form's
    values). Its settings are applied to the row read again under a lock, and only the fields
    this edit changes are written: the lease, the schedule and the secrets belong to the
    executions and the rotations running meanwhile, and an edit must not write them back.
    """
    data = dict(data)
    auth_secret = data.pop("auth_secret", None)
    stored = Endpoint.objects.filter(pk=endpoint.pk).values_list("url", flat=True)
    if "url" in data and data["url"] != stored.get():
        _check_url(data["url"])  # DNS, so before the lock
    with transaction.atomic():
        current = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        changed = {name for name, value in data.items() if getattr(current, name) != value}
        for name in changed:
            setattr(current, name, data[name])
        if auth_secret:  # blank keeps the stored one
            current.auth_secret = auth_secret
            changed.add("auth_secret_encrypted")
        if current.auth_type == AuthType.NONE and current.auth_secret_encrypted:
            # No authentication: keep no secret (nor one a later key rotation could not read).
            current.auth_secret_encrypted = ""
            changed.add("auth_secret_encrypted")
        if "url" in changed and current.wait_until:
            # Another server: the old one's Retry-After is not its answer.
            current.wait_until = None
            changed.add("wait_until")
        if current.is_active and current.disabled_reason:
            current.disabled_reason = ""
            changed.add("disabled_reason")
        if "frequency_minutes" in changed and current.next_sync_at:
            since = current.last_run_at or timezone.now()
            current.next_sync_at = min(
                current.next_sync_at, since + dt.timedelta(minutes=current.frequency_minutes)
            )
            changed.add("next_sync_at")
        current.full_clean()
        if changed:
            current.save(update_fields=sorted(changed))
    endpoint.refresh_from_db()
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
