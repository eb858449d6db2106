"""One signed POST to the CRM (Standard Webhooks), and what its answer means for us."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import time
from dataclasses import dataclass

import httpx
from standardwebhooks.webhooks import Webhook

from webhooks.models import AuthType, Endpoint
from webhooks.url_safety import UnsafeURL, check_url

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 30.0
EXCERPT_BYTES = 2048
MAX_RETRY_AFTER = dt.timedelta(hours=24)
USER_AGENT = "s360-crm-sync/1.0 (+Standard Webhooks)"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""
    retry_after: dt.timedelta | None = None

    @property
    def gone(self) -> bool:
        """410: the CRM says this endpoint is gone for good."""
        return self.status_code == 410


def new_client() -> httpx.Client:
    """An HTTP client for one execution: connect 5 s, 30 s in all, redirects not followed."""
    return httpx.Client(
        timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )


def signed_headers(*, endpoint: Endpoint, payload_id: str, body: str, at: dt.datetime) -> dict:
    """Return the Standard Webhooks headers, plus the endpoint's extra authentication."""
    headers = {
        "content-type": "application/json",
        "webhook-id": payload_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(endpoint.signing_secret).sign(
            payload_id, at.astimezone(dt.UTC), body
        ),
    }
    if endpoint.auth_type == AuthType.BASIC:
        pair = f"{endpoint.auth_username}:{endpoint.auth_secret}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif endpoint.auth_type == AuthType.BEARER:
        headers["authorization"] = f"Bearer {endpoint.auth_secret}"
    elif endpoint.auth_type == AuthType.HEADER:
        headers[endpoint.auth_username.lower()] = endpoint.auth_secret
    return headers


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """Return the wait a Retry-After header asks for (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = dt.timedelta(seconds=int(value))
    else:
        try:
            wait = email.utils.parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(dt.timedelta(0), min(wait, MAX_RETRY_AFTER))


def post_payload(
    *, client: httpx.Client, endpoint: Endpoint, payload_id: str, body: str, at: dt.datetime
) -> SendResult:
    """POST one payload and classify the outcome. Never raises for network or CRM errors."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        check_url(endpoint.url)  # again at send time: DNS may have changed since the save
        headers = signed_headers(endpoint=endpoint, payload_id=payload_id, body=body, at=at)
        response = client.post(endpoint.url, content=body.encode(), headers=headers)
    except UnsafeURL as error:
        return SendResult(False, None, elapsed(), error=f"Refused: {error}")
    except httpx.TimeoutException as error:
        return SendResult(False, None, elapsed(), error=f"Timeout: {type(error).__name__}")
    except httpx.HTTPError as error:
        return SendResult(False, None, elapsed(), error=f"{type(error).__name__}: {error}")
    except (UnicodeError, ValueError) as error:  # e.g. a stored auth value httpx cannot encode
        return SendResult(False, None, elapsed(), error=f"Cannot send: {error}")
    excerpt = response.content[:EXCERPT_BYTES].decode("utf-8", "replace")
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, code, elapsed(), excerpt=excerpt)
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        error = f"HTTP {code}: redirects are not followed (Location: {location})"
    else:
        error = f"HTTP {code}"
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"), at)
    return SendResult(False, code, elapsed(), error=error, excerpt=excerpt, retry_after=retry_after)
