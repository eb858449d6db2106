"""One signed POST to the CRM (Standard Webhooks), and what its answer means for us."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime as dt
import email.utils
import html
import json
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from webhooks.models import AuthType, Endpoint
from webhooks.url_safety import UnsafeURL, check_url, resolve_allowed

EXCERPT_BYTES = 2048
# How much of an answer we read at most: the excerpt keeps 2 KiB. A CRM answering megabytes
# (or a small gzip that inflates to gigabytes) must not cost a worker its memory.
ANSWER_READ_BYTES = 64 * 1024
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


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, backend: _GuardedBackend) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._backend.time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._backend.time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        timeout = self._backend.time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout), self._backend
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


def _resolve_within(host: str, port: int, wait: float | None) -> list:
    """resolve_allowed(host, port), waiting at most `wait` seconds. The lookup runs in a
    thread of its own, so a stalled resolver holds that thread (until the resolver's own
    timeouts end it), not the execution; and not a shared pool either, which stalled lookups
    for one CRM could fill, starving the other endpoints' sends. A daemon: a worker shutting
    down does not wait for it."""
    lookup: concurrent.futures.Future = concurrent.futures.Future()

    def work() -> None:
        try:
            lookup.set_result(resolve_allowed(host, port))
        except BaseException as error:  # handed to the waiting sender
            lookup.set_exception(error)

    threading.Thread(target=work, name=f"dns {host}", daemon=True).start()
    return lookup.result(wait)


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses vetted by the SSRF rule, and holds every request to one
    deadline.

    The vetted address is the one we connect to: resolving once for the check and letting
    the socket library resolve again would let a DNS answer that changes in between
    (rebinding) reach a private address. TLS still verifies the certificate against the
    host name (httpcore passes it to start_tls). httpx's own timeouts apply per read, so a
    CRM that drips one byte at a time would never trip them; the deadline does.
    """

    deadline: float | None = None

    def time_left(self, timeout: float | None, error: type[Exception]) -> float | None:
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error(f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last_error: Exception = httpcore.ConnectError(f"{host} has no address")
        # getaddrinfo cannot be interrupted and the resolver's own timeouts (resolv.conf) can
        # add up to more than our deadline, or the lease: wait for it only as long as we have.
        try:
            addresses = _resolve_within(
                host, port, self.time_left(timeout, httpcore.ConnectTimeout)
            )
        except concurrent.futures.TimeoutError:
            raise httpcore.ConnectTimeout(f"DNS did not answer for {host} in time") from None
        except RuntimeError as error:  # no thread to be had: a failed send, not a crash
            raise httpcore.ConnectError(f"Cannot look {host} up: {error}") from None
        for *_, address in addresses:
            try:  # an IP literal: the socket library does not resolve it again
                stream = super().connect_tcp(
                    address[0],
                    port,
                    self.time_left(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
                continue
            return _DeadlineStream(stream, self)
        raise last_error


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on the guarded backend; each request gets the full time budget."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        self._backend = _GuardedBackend()
        # httpx takes no network backend; its pool does (httpcore's public parameter). The
        # pool gets httpx's own defaults (an idle connection is dropped after 5 s). The CA
        # bundle still follows SSL_CERT_FILE / SSL_CERT_DIR: that is trust, not routing.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=self._backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._backend.deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT_SECONDS
        return super().handle_request(request)


def new_client() -> httpx.Client:
    """An HTTP client for one execution: WEBHOOK_TIMEOUT_SECONDS in all per POST (connect at
    most WEBHOOK_CONNECT_TIMEOUT_SECONDS), only to vetted addresses, redirects not followed.
    No proxy from the environment (our own transport: the address we vet must be the one we
    reach) and no .netrc credentials (trust_env off)."""
    total = settings.WEBHOOK_TIMEOUT_SECONDS
    return httpx.Client(
        transport=_GuardedTransport(),
        timeout=httpx.Timeout(total, connect=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS),
        follow_redirects=False,
        trust_env=False,
        # Uncompressed answers: we keep an excerpt, and a compressed one could inflate to any size.
        headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
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


def _credentials(endpoint: Endpoint, headers: dict) -> list[str]:
    """Our credential values in the headers we sent, in every form a CRM's answer could echo
    them in: as sent, decoded (a Basic password, `user:password`), JSON-escaped,
    percent-encoded, HTML-escaped. Longest first. (The signing secret never travels.)"""
    values = []
    if authorization := headers.get("authorization"):
        scheme, _, token = authorization.partition(" ")
        values += [authorization, token]
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                pair = base64.b64decode(token).decode()
                values += [pair, pair.partition(":")[2]]
    if endpoint.auth_type == AuthType.HEADER:
        values.append(headers.get(endpoint.auth_username.lower(), ""))
    forms = set()
    for value in filter(None, values):
        forms |= {
            value,
            json.dumps(value)[1:-1],
            urllib.parse.quote(value),
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            html.escape(value),
        }
    return sorted(forms, key=len, reverse=True)


def _redact(text: str, credentials: list[str]) -> str:
    for value in credentials:
        text = text.replace(value, "[redacted]")
    return text


def _excerpt(content: bytes, credentials: list[str]) -> str:
    """The first EXCERPT_BYTES of an answer, with our credentials blanked out: a CRM's error
    page may echo the request headers back, and the excerpt is kept and shown in the admin
    and the API. Blanked before cutting, so a value straddling the cut leaves no prefix."""
    margin = len(credentials[0].encode()) if credentials else 0
    text = _redact(content[: EXCERPT_BYTES + margin].decode("utf-8", "replace"), credentials)
    return text.encode()[:EXCERPT_BYTES].decode("utf-8", "ignore")


def _read_answer(response: httpx.Response) -> bytes:
    """At most ANSWER_READ_BYTES of the answer's body, decoded; the rest is never read (the
    connection is closed instead of reused). The answer's status is what counts; its body is
    only kept as an excerpt."""
    raw = bytearray()
    for chunk in response.iter_raw():
        raw += chunk
        if len(raw) >= ANSWER_READ_BYTES:
            break
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return bytes(raw[:ANSWER_READ_BYTES])
    if encoding in ("gzip", "x-gzip", "deflate"):
        # We asked for identity; a CRM compressing anyway is inflated to the cap, no further.
        with contextlib.suppress(zlib.error):
            return zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(raw, ANSWER_READ_BYTES)
    return b"(a compressed answer, not shown)"  # its encoding's name is the CRM's text too


def post_payload(
    *, client: httpx.Client, endpoint: Endpoint, payload_id: str, body: str, at: dt.datetime
) -> SendResult:
    """POST one payload and classify the outcome. Never raises for network or CRM errors."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    credentials: list[str] = []
    try:
        # The URL's form here; its addresses are vetted where we connect (_GuardedBackend).
        check_url(endpoint.url, resolve=False)
        headers = signed_headers(endpoint=endpoint, payload_id=payload_id, body=body, at=at)
        credentials = _credentials(endpoint, headers)
        with client.stream(
            "POST", endpoint.url, content=body.encode(), headers=headers
        ) as response:
            content = _read_answer(response)
    except UnsafeURL as error:
        return SendResult(False, None, elapsed(), error=f"Refused: {error}")
    except httpx.TimeoutException as error:
        return SendResult(False, None, elapsed(), error=f"Timeout: {type(error).__name__}")
    except httpx.HTTPError as error:
        error_text = _redact(f"{type(error).__name__}: {error}", credentials)
        return SendResult(False, None, elapsed(), error=error_text)
    except (UnicodeError, ValueError) as error:  # e.g. a stored auth value httpx cannot encode
        return SendResult(
            False, None, elapsed(), error=_redact(f"Cannot send: {error}", credentials)
        )
    excerpt = _excerpt(content, credentials)
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, code, elapsed(), excerpt=excerpt)
    if 300 <= code < 400:
        # The Location is the CRM's text too: it may carry what we sent.
        location = _redact(response.headers.get("location", ""), credentials)
        error = f"HTTP {code}: redirects are not followed (Location: {location})"
    else:
        error = f"HTTP {code}"
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"), at)
    return SendResult(False, code, elapsed(), error=error, excerpt=excerpt, retry_after=retry_after)
