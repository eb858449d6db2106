"""Endpoint secrets, the signing secret (`whsec_…`) and the auth secret (Basic password,
bearer token, custom header value): encrypted at rest, never logged, never in an API answer or
an admin page after the one that shows the signing secret, and readable across a key rotation.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import urllib.parse
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from standardwebhooks.webhooks import Webhook

import sync.tasks
from config.logs import JsonFormatter
from sync import services as sync_services
from sync.models import Delivery, PendingOrder, RunTrigger
from tests.factories import create_orders, endpoint_admin_form
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

AUTH = {  # auth type -> (user name or header name, a secret easy to spot)
    "BASIC": ("crm-user", "basic-Pa55word-9f3k"),
    "BEARER": ("", "bearer-T0ken-7q2w"),
    "HEADER": ("X-Api-Key", "header-Va1ue-4m8z"),
}
ENDPOINTS = "/admin/webhooks/endpoint/"


class Secrets:
    """Every secret a test has seen, in every form it could leak in."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, secret: str, username: str = "") -> None:
        self.values |= {secret, secret.removeprefix("whsec_")}
        if username:  # what an HTTP Basic header carries, encoded and decoded
            pair = f"{username}:{secret}"
            self.values |= {pair, base64.b64encode(pair.encode()).decode()}

    def found_in(self, text: str | bytes) -> list[str]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return [s for s in self.values if s in text]


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def crm(httpserver):
    """The CRM: records what it receives; answers 200 unless told otherwise."""
    httpserver.expect_request("/crm").respond_with_data("stored")
    return httpserver


@pytest.fixture
def queued(monkeypatch) -> None:
    monkeypatch.setattr(sync.tasks.run_endpoint, "delay", lambda *a, **k: None)


def create_through_api(api, secrets: Secrets, url: str, auth_type: str) -> Endpoint:
    username, auth_secret = AUTH[auth_type]
    body = {
        "name": f"CRM {auth_type}",
        "url": url,
        "authType": auth_type,
        "authUsername": username,
        "authSecret": auth_secret,
    }
    response = api.post("/api/v1/endpoints/", body, format="json")
    assert response.status_code == 201, response.content
    secrets.add(auth_secret, username if auth_type == "BASIC" else "")
    shown = response.json()["secret"]
    assert shown.startswith("whsec_")
    assert secrets.found_in(response.content) == [], "the auth secret is write-only"
    secrets.add(shown)
    return Endpoint.objects.get(pk=response.json()["id"])


# --- (a) at rest ----------------------------------------------------------------------------


@pytest.mark.parametrize("auth_type", AUTH)
def test_secrets_are_encrypted_at_rest(api, secrets, crm, auth_type):
    endpoint = create_through_api(api, secrets, crm.url_for("/crm"), auth_type)
    api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"name": "Renamed"}, format="json")
    endpoint.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_secret_encrypted, auth_secret_encrypted FROM webhooks_endpoint "
            "WHERE id = %s",
            [endpoint.pk],
        )
        signing_raw, auth_raw = cursor.fetchone()
        cursor.execute("SELECT * FROM webhooks_historicalendpoint")
        history = cursor.fetchall()
        history_columns = [column[0] for column in cursor.description]
    assert len(history) == 2
    # The history keeps no secret, not even encrypted: a rotated key would leave old tokens.
    assert [c for c in history_columns if "secret" in c] == []
    for raw, secret in ((signing_raw, endpoint.signing_secret), (auth_raw, AUTH[auth_type][1])):
        assert raw.startswith("gAAAA")  # a Fernet token
        assert raw != secret
        assert secrets.found_in(raw) == []
    assert secrets.found_in(repr(history)) == []


# --- (b) never logged -----------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record, at DEBUG, from every logger (SQL included)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    names = ["", "django", "django.db.backends", "django.request", "httpx", "httpcore"]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    debug_cursor = connection.force_debug_cursor
    connection.force_debug_cursor = True
    yield records
    connection.force_debug_cursor = debug_cursor
    logging.getLogger().removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_secrets_are_never_logged(api, admin_client_logged, secrets, crm, logs, queued):
    client = admin_client_logged
    url = crm.url_for("/crm")
    # Create: through the API (Basic) and the admin (bearer).
    endpoint = create_through_api(api, secrets, url, "BASIC")
    bearer = AUTH["BEARER"][1]
    secrets.add(bearer)
    response = client.post(f"{ENDPOINTS}add/", admin_form(url, "BEARER", bearer))
    secrets.add(shown_secret(response))
    # Update: a new auth secret through the API and the admin.
    api.patch(
        f"/api/v1/endpoints/{endpoint.pk}/",
        {"authType": "HEADER", "authUsername": "X-Api-Key", "authSecret": AUTH["HEADER"][1]},
        format="json",
    )
    secrets.add(AUTH["HEADER"][1])
    client.post(
        f"{ENDPOINTS}{endpoint.pk}/change/",
        admin_form(url, "BASIC", "basic-Chang3d-2x9v", name="CRM BASIC"),
    )
    secrets.add("basic-Chang3d-2x9v", AUTH["BASIC"][0])
    assert Endpoint.objects.get(pk=endpoint.pk).auth_secret == "basic-Chang3d-2x9v"
    # Rotate: through the API and the admin.
    secrets.add(api.post(f"/api/v1/endpoints/{endpoint.pk}/rotate-secret/").json()["secret"])
    secrets.add(shown_secret(client.post(f"{ENDPOINTS}{endpoint.pk}/rotate/")))
    # A test send, an execution that succeeds and one that fails.
    client.post(f"{ENDPOINTS}{endpoint.pk}/test/")
    create_orders(3)
    run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    assert run.orders_delivered == 3
    received = len(crm.log)
    crm.clear()
    crm.expect_request("/crm").respond_with_data("down", status=500)
    create_orders(2)
    run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    assert run.orders_failed == 2
    # The master key rotation.
    out = io.StringIO()
    call_command("rotate_field_key", stdout=out)
    assert secrets.found_in(out.getvalue()) == []

    assert received >= 2 and len(crm.log) == 1 and len(secrets.values) >= 10
    assert any(r.name == "sync.services" for r in logs), "the engine's lines were captured"
    assert any(r.name == "django.db.backends" for r in logs), "SQL was captured"
    json_lines = JsonFormatter()
    for record in logs:
        leaked = secrets.found_in(json_lines.format(record)) + secrets.found_in(
            repr(record.__dict__)
        )
        assert leaked == [], (record.name, record.getMessage()[:300])


def admin_form(url: str, auth_type: str, auth_secret: str, **overrides: str) -> dict:
    fields = {
        "name": f"CRM {auth_type}",
        "url": url,
        "auth_type": auth_type,
        "auth_username": AUTH[auth_type][0],
        "auth_secret": auth_secret,
    }
    return endpoint_admin_form(**{**fields, **overrides})


def shown_secret(response) -> str:
    """The signing secret the admin showed on the page answering the POST."""
    assert response.status_code == 200, response.status_code
    (secret,) = re.findall(r'id="signing-secret"[^>]*>(whsec_[A-Za-z0-9+/=]+)<', response.text)
    return secret


# --- (c) never in an API answer after creation ----------------------------------------------


def test_the_api_shows_the_signing_secret_once(api, secrets, crm, queued):
    endpoint = create_through_api(api, secrets, crm.url_for("/crm"), "BASIC")
    base = f"/api/v1/endpoints/{endpoint.pk}/"
    rotated = api.post(f"{base}rotate-secret/")
    assert rotated.status_code == 200
    assert list(rotated.json()) == ["secret"]
    secrets.add(rotated.json()["secret"])
    patched = api.patch(
        base, {"frequencyMinutes": 5, "authSecret": "basic-N3w-1p0o"}, format="json"
    )
    secrets.add("basic-N3w-1p0o", AUTH["BASIC"][0])
    sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    create_orders(1)
    sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    reads = [patched] + [
        api.generic(method, path)
        for method, path in [
            ("GET", "/api/v1/endpoints/"),
            ("GET", base),
            ("OPTIONS", base),
            ("GET", f"{base}parked/"),
            ("GET", "/api/v1/runs/"),
            ("GET", "/api/v1/initial-imports/"),
            ("GET", "/api/schema/?format=json"),
        ]
    ]
    assert Delivery.objects.exists()
    for response in reads:
        assert response.status_code == 200, response.request["PATH_INFO"]
        assert secrets.found_in(response.content) == [], response.request["PATH_INFO"]


# --- (d) never in an admin page after creation ----------------------------------------------


def test_the_admin_shows_the_signing_secret_once(admin_client_logged, secrets, crm, queued):
    client = admin_client_logged
    username, auth_secret = AUTH["BASIC"]
    secrets.add(auth_secret, username)
    created = client.post(f"{ENDPOINTS}add/", admin_form(crm.url_for("/crm"), "BASIC", auth_secret))
    signing = shown_secret(created)  # shown once, in the answer to the create
    assert auth_secret not in created.content.decode()
    secrets.add(signing)
    endpoint = Endpoint.objects.get()
    rotated = client.post(f"{ENDPOINTS}{endpoint.pk}/rotate/")
    secrets.add(shown_secret(rotated))
    # Neither answer left the secret where it outlives the page: a cookie, the session.
    for answer in (created, rotated):
        assert secrets.found_in(str(answer.cookies)) == []
    assert secrets.found_in(str(dict(client.session))) == []
    assert secrets.found_in(str(list(Session.objects.values_list("session_data")))) == []
    # A form sent back with an error does not echo the auth secret either.
    refused = client.post(
        f"{ENDPOINTS}{endpoint.pk}/change/",
        admin_form(crm.url_for("/crm"), "BASIC", "basic-Typ3d-8u7y", frequency_minutes="0"),
    )
    assert refused.status_code == 200 and refused.context["adminform"].form.errors
    secrets.add("basic-Typ3d-8u7y", username)
    assert secrets.found_in(refused.content) == []  # the typed secret is not sent back
    client.post(f"{ENDPOINTS}{endpoint.pk}/test/")
    create_orders(2)
    run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    delivery = run.deliveries.get()
    history_id = endpoint.history.latest().history_id
    pages = [
        "/admin/",
        ENDPOINTS,
        f"{ENDPOINTS}{endpoint.pk}/change/",
        f"{ENDPOINTS}{endpoint.pk}/history/",
        f"{ENDPOINTS}{endpoint.pk}/history/{history_id}/",
        f"{ENDPOINTS}{endpoint.pk}/delete/",
        "/admin/sync/syncrun/",
        f"/admin/sync/syncrun/{run.pk}/change/",
        "/admin/sync/delivery/",
        f"/admin/sync/delivery/{delivery.pk}/change/",
        "/admin/sync/pendingorder/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert secrets.found_in(response.content) == [], page


@pytest.mark.parametrize("auth_type", ["BASIC", "BEARER", "HEADER"])
def test_a_crm_echoing_our_headers_does_not_get_them_stored(api, secrets, crm, auth_type):
    endpoint = create_through_api(api, secrets, crm.url_for("/echo"), auth_type)
    crm.expect_request("/echo").respond_with_handler(
        lambda request: __import__("werkzeug").Response(json.dumps(dict(request.headers)), 500)
    )
    create_orders(1)
    sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    (delivery,) = Delivery.objects.filter(endpoint=endpoint)
    assert delivery.status_code == 500
    assert "[redacted]" in delivery.response_excerpt  # the echo was kept, our values blanked
    assert secrets.found_in(delivery.response_excerpt) == []
    assert secrets.found_in(api.get("/api/v1/runs/").content) == []


TRICKY = {  # auth type -> (user name, a secret whose escaped forms differ from it)
    "BASIC": ("crm-user", 'p@ss/w:rd&<"x y>'),
    "BEARER": ("", 'tok/en+&"q=1 z'),
    "HEADER": ("X-Api-Key", "k/ey&<v a>"),
}


@pytest.mark.parametrize("auth_type", list(TRICKY))
def test_a_crm_echoing_our_credentials_in_any_form_does_not_get_them_stored(api, crm, auth_type):
    """A CRM's error page or redirect may echo what we sent decoded, JSON-escaped,
    percent-encoded or HTML-escaped; none of it is kept, in the excerpt or the error."""
    username, secret = TRICKY[auth_type]
    body = {"name": "CRM", "url": crm.url_for("/echo"), "authType": auth_type}
    body |= {"authUsername": username, "authSecret": secret}
    assert api.post("/api/v1/endpoints/", body, format="json").status_code == 201
    endpoint = Endpoint.objects.get()
    pair = f"{username}:{secret}"
    forms = {secret, pair, base64.b64encode(pair.encode()).decode()}
    forms |= {json.dumps(secret)[1:-1], json.dumps(pair)[1:-1]}
    forms |= {urllib.parse.quote(secret), urllib.parse.quote(secret, safe="")}
    forms |= {urllib.parse.quote_plus(secret)}
    forms |= {html.escape(secret), html.escape(pair)}
    if auth_type != "BASIC":
        forms -= {pair, base64.b64encode(pair.encode()).decode()}
        forms -= {json.dumps(pair)[1:-1], html.escape(pair)}
    echo = " | ".join(sorted(forms))
    crm.expect_request("/echo").respond_with_data(
        f"bad login: {echo}",
        status=302,
        headers={"Location": "https://crm.example.com/login?token=" + urllib.parse.quote(secret)},
    )
    create_orders(1)
    sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    (delivery,) = Delivery.objects.filter(endpoint=endpoint)
    assert delivery.status_code == 302
    assert "[redacted]" in delivery.response_excerpt and "[redacted]" in delivery.error
    kept = delivery.response_excerpt + delivery.error
    assert [form for form in forms if form in kept] == []
    assert secret not in api.get("/api/v1/runs/").content.decode()


# --- (e) key rotation -----------------------------------------------------------------------


def test_key_rotation_full_cycle(api, admin_client_logged, secrets, crm, settings, queued):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = key_a
    endpoints = {
        auth_type: create_through_api(api, secrets, crm.url_for("/crm"), auth_type)
        for auth_type in AUTH
    }
    shown = {}
    for auth_type, endpoint in endpoints.items():
        response = api.post(f"/api/v1/endpoints/{endpoint.pk}/rotate-secret/")
        shown[auth_type] = response.json()["secret"]
    before = dict(Endpoint.objects.values_list("pk", "signing_secret_encrypted"))

    settings.FIELD_ENCRYPTION_KEY = f"{key_b},{key_a}"  # the new key first
    call_command("rotate_field_key", stdout=io.StringIO())
    after = dict(Endpoint.objects.values_list("pk", "signing_secret_encrypted"))
    assert all(after[pk] != before[pk] for pk in before)

    settings.FIELD_ENCRYPTION_KEY = key_b  # the old key is gone
    create_orders(1)
    for auth_type, endpoint in endpoints.items():
        crm.clear_log()
        run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
        assert run.orders_delivered == 1, run.deliveries.values("error")
        request, _ = crm.log[-1]
        Webhook(shown[auth_type]).verify(request.get_data(), dict(request.headers))
        username, auth_secret = AUTH[auth_type]
        if auth_type == "BASIC":
            assert request.authorization.password == auth_secret
        elif auth_type == "BEARER":
            assert request.headers["Authorization"] == f"Bearer {auth_secret}"
        else:
            assert request.headers[username] == auth_secret

    settings.FIELD_ENCRYPTION_KEY = key_a  # the wrong key alone: clear errors, never a 500
    endpoint = endpoints["BEARER"]
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEY"):
        call_command("rotate_field_key", stdout=io.StringIO())
    assert dict(Endpoint.objects.values_list("pk", "signing_secret_encrypted")) == after
    client = admin_client_logged
    assert client.get(f"{ENDPOINTS}{endpoint.pk}/change/").status_code == 200
    tested = client.post(f"{ENDPOINTS}{endpoint.pk}/test/", follow=True)
    assert "FIELD_ENCRYPTION_KEY" in " ".join(str(m) for m in tested.context["messages"])
    edit = api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"frequencyMinutes": 5}, format="json")
    assert edit.status_code == 200, edit.content
    saved = client.post(
        f"{ENDPOINTS}{endpoint.pk}/change/",
        admin_form(crm.url_for("/crm"), "BEARER", "", name=endpoint.name),
    )
    assert saved.status_code == 302
    create_orders(1)
    crm.clear_log()
    run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    assert run.orders_failed >= 1 and not crm.log
    assert "FIELD_ENCRYPTION_KEY" in run.deliveries.get().error
    # Entering the secrets again (a new signing secret, the auth secret) recovers.
    secret = api.post(f"/api/v1/endpoints/{endpoint.pk}/rotate-secret/").json()["secret"]
    api.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"authSecret": AUTH["BEARER"][1]}, format="json")
    PendingOrder.objects.update(due_at=run.started_at)  # due now, not after a backoff
    run = sync_services.execution_run(endpoint_id=endpoint.pk, trigger=RunTrigger.MANUAL)
    assert run.orders_delivered >= 1
    request, _ = crm.log[-1]
    Webhook(secret).verify(request.get_data(), dict(request.headers))
