"""The endpoint admin (/admin/webhooks/endpoint/): add form with a secret shown once, URL
safety, POST-only buttons (pause, resume, rotate, run, test payload), a changelist with backlog
counts in constant queries, and the outbox admin's replay action."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import sync.tasks
from sync.models import PendingOrder, RunTrigger
from tests.factories import UserFactory, create_orders, endpoint_admin_form
from webhooks import services
from webhooks.crypto import encrypt
from webhooks.models import Endpoint

CHANGELIST = "/admin/webhooks/endpoint/"
ADD = "/admin/webhooks/endpoint/add/"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")

pytestmark = pytest.mark.django_db


def change_url(pk: int) -> str:
    return f"{CHANGELIST}{pk}/change/"


def button(pk: int, action: str) -> str:
    return f"{CHANGELIST}{pk}/{action}/"


def make_endpoint(**fields) -> tuple[Endpoint, str]:
    """Create an endpoint through the service; return it with its signing secret."""
    data = {"name": "CRM", "url": "https://crm.example.com/hook", **fields}
    return services.endpoint_create(data=data)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """Record run_endpoint.delay calls instead of sending them to the broker."""
    calls: list[tuple] = []
    fake = SimpleNamespace(delay=lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setattr(sync.tasks, "run_endpoint", fake)
    return calls


# --- add form -------------------------------------------------------------------------------


def assert_shown_once(response, secret: str) -> None:
    """The secret is on the page that answers the POST, and nowhere the browser or the
    server keeps it: not in a cookie (the messages cookie), not in the session, not cached."""
    assert response.status_code == 200
    assert SECRET.findall(response.content.decode()) == [secret]
    assert secret not in str(response.cookies)
    assert "no-store" in response["Cache-Control"]
    assert not any(secret in str(m) for m in get_messages(response.wsgi_request))
    assert secret not in str(dict(response.wsgi_request.session))


def test_add_form_creates_endpoint_and_shows_secret_once(admin_client_logged):
    """The add form saves the endpoint and answers with its secret, shown this once."""
    response = admin_client_logged.post(ADD, endpoint_admin_form())
    assert response.status_code == 200
    endpoint = Endpoint.objects.get()
    assert endpoint.name == "Admin CRM"
    assert endpoint.url == "https://crm.example.com/admin-hook"
    assert endpoint.is_active is True
    assert endpoint.filter_order_types == []
    assert endpoint.filter_sales_channels == []
    secret = endpoint.signing_secret
    assert secret.startswith("whsec_")
    assert_shown_once(response, secret)
    assert f'href="{change_url(endpoint.pk)}"' in response.content.decode()

    later = admin_client_logged.get(change_url(endpoint.pk))
    assert later.status_code == 200
    assert secret not in later.content.decode()
    assert secret not in admin_client_logged.get(CHANGELIST).content.decode()
    history = admin_client_logged.get(f"{CHANGELIST}{endpoint.pk}/history/")
    assert history.status_code == 200
    assert secret not in history.content.decode()


def test_add_form_stores_filters_and_auth(admin_client_logged):
    """Ticked filters, comma-separated channels and a bearer token are stored as such."""
    data = endpoint_admin_form(
        filter_order_types=["SALE", "REFUND_CLIENT"],
        filter_sales_channels=" WEB , BOX ,,",
        auth_type="BEARER",
        auth_secret="token-from-admin",
    )
    response = admin_client_logged.post(ADD, data)
    assert response.status_code == 200  # the page showing the signing secret
    endpoint = Endpoint.objects.get()
    assert endpoint.filter_order_types == ["SALE", "REFUND_CLIENT"]
    assert endpoint.filter_sales_channels == ["WEB", "BOX"]
    assert endpoint.auth_type == "BEARER"
    assert endpoint.auth_secret == "token-from-admin"
    page = admin_client_logged.get(change_url(endpoint.pk)).content.decode()
    assert "token-from-admin" not in page


def test_add_form_refuses_private_url(admin_client_logged, settings):
    """With private networks not allowed, a loopback URL is a form error and nothing is saved."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = admin_client_logged.post(ADD, endpoint_admin_form(url="http://127.0.0.1:8000/hook"))
    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    assert "loopback" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_add_form_refuses_frequency_zero(admin_client_logged):
    """A frequency of 0 minutes is a form error; nothing is saved."""
    response = admin_client_logged.post(ADD, endpoint_admin_form(frequency_minutes="0"))
    assert response.status_code == 200
    assert "frequency_minutes" in response.context["adminform"].form.errors
    assert not Endpoint.objects.exists()


def test_add_form_refuses_basic_without_username(admin_client_logged):
    """Basic auth without a user name is a form error."""
    response = admin_client_logged.post(
        ADD, endpoint_admin_form(auth_type="BASIC", auth_secret="pw", auth_username="")
    )
    assert response.status_code == 200
    assert "auth_username" in response.context["adminform"].form.errors
    assert not Endpoint.objects.exists()


def test_change_form_blank_auth_secret_keeps_stored(admin_client_logged):
    """Saving the change form with the auth secret left blank keeps the stored one."""
    endpoint, secret = make_endpoint(auth_type="BEARER", auth_secret="keep-me")
    data = endpoint_admin_form(
        name="Renamed", url=endpoint.url, auth_type="BEARER", auth_secret="", frequency_minutes="30"
    )
    response = admin_client_logged.post(change_url(endpoint.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    endpoint.refresh_from_db()
    assert endpoint.name == "Renamed"
    assert endpoint.frequency_minutes == 30
    assert endpoint.auth_secret == "keep-me"
    assert endpoint.signing_secret == secret


# --- buttons --------------------------------------------------------------------------------


def test_pause_and_resume_buttons(admin_client_logged):
    """Pause switches the endpoint off, resume back on; each redirects to the change page."""
    endpoint, _ = make_endpoint()
    response = admin_client_logged.post(button(endpoint.pk, "pause"))
    assert response.status_code == 302
    assert response["Location"] == change_url(endpoint.pk)
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    page = admin_client_logged.get(change_url(endpoint.pk)).content.decode()
    assert button(endpoint.pk, "resume") in page
    assert button(endpoint.pk, "pause") not in page

    admin_client_logged.post(button(endpoint.pk, "resume"))
    endpoint.refresh_from_db()
    assert endpoint.is_active is True


def test_rotate_button_changes_secret_and_shows_it_once(admin_client_logged):
    """Rotate stores a new secret and answers with it, not on the change page after."""
    endpoint, old = make_endpoint()
    response = admin_client_logged.post(button(endpoint.pk, "rotate"))
    endpoint.refresh_from_db()
    new = endpoint.signing_secret
    assert new != old
    assert new.startswith("whsec_")
    assert_shown_once(response, new)
    assert new not in admin_client_logged.get(change_url(endpoint.pk)).content.decode()


def test_run_button_queues_an_execution(
    admin_client_logged, queued, django_capture_on_commit_callbacks
):
    """Run now queues one manual execution of this endpoint once the request commits."""
    endpoint, _ = make_endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged.post(button(endpoint.pk, "run"), follow=True)
    assert response.status_code == 200
    assert queued == [((endpoint.pk, RunTrigger.MANUAL), {})]
    assert any("queued" in m for m in texts(response))


def test_run_button_on_paused_endpoint_queues_nothing(
    admin_client_logged, queued, django_capture_on_commit_callbacks
):
    """Run now on a paused endpoint shows an error and queues nothing."""
    endpoint, _ = make_endpoint(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged.post(button(endpoint.pk, "run"), follow=True)
    assert queued == []
    assert any("paused" in m for m in texts(response))


def test_run_button_while_the_crm_asked_to_wait_queues_nothing(
    admin_client_logged, queued, django_capture_on_commit_callbacks
):
    """Run now while a Retry-After wait is ahead says until when, and queues nothing."""
    until = timezone.now() + dt.timedelta(minutes=5)
    endpoint, _ = make_endpoint(wait_until=until)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged.post(button(endpoint.pk, "run"), follow=True)
    assert queued == []
    assert any(f"{until:%H:%M:%S} UTC (Retry-After)" in m for m in texts(response))
    page = admin_client_logged.get(change_url(endpoint.pk)).content.decode()
    assert "Waiting until" in page
    listing = admin_client_logged.get("/admin/webhooks/endpoint/").content.decode()
    assert "waiting (Retry-After)" in listing


def test_test_payload_button_sends_a_signed_empty_payload(admin_client_logged, httpserver):
    """Send a test payload POSTs a signed orders.sync with no orders; 200 is a success."""
    httpserver.expect_request("/crm", method="POST").respond_with_json({"ok": True})
    endpoint, secret = make_endpoint(url=httpserver.url_for("/crm"))
    response = admin_client_logged.post(button(endpoint.pk, "test"), follow=True)
    assert response.status_code == 200
    messages = list(get_messages(response.wsgi_request))
    assert len(messages) == 1
    assert messages[0].level_tag == "success"
    assert "200" in str(messages[0])

    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    body = request.get_data(as_text=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(headers)
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "orders.sync"
    assert payload["id"] == headers["webhook-id"]
    assert payload["endpointId"] == endpoint.pk
    assert payload["orders"] == []


def test_test_payload_button_reports_a_failure(admin_client_logged, httpserver):
    """A CRM answering 500 to the test payload gives an error message naming 500."""
    httpserver.expect_request("/crm", method="POST").respond_with_data("down", status=500)
    endpoint, _ = make_endpoint(url=httpserver.url_for("/crm"))
    response = admin_client_logged.post(button(endpoint.pk, "test"), follow=True)
    (message,) = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert "500" in str(message)


def test_test_payload_signature_fails_with_another_secret(admin_client_logged, httpserver):
    """The test payload's signature does not verify with a different secret."""
    from standardwebhooks.webhooks import WebhookVerificationError

    httpserver.expect_request("/crm", method="POST").respond_with_json({})
    endpoint, _ = make_endpoint(url=httpserver.url_for("/crm"))
    admin_client_logged.post(button(endpoint.pk, "test"))
    request, _ = httpserver.log[0]
    _, other = make_endpoint(name="Other")
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.get_data(as_text=True), dict(request.headers))


def test_test_payload_with_non_ascii_token_fails_gracefully(admin_client_logged, httpserver):
    """A token that cannot go in an HTTP header gives an error message, not a server error."""
    httpserver.expect_request("/crm", method="POST").respond_with_json({})
    endpoint, _ = make_endpoint(url=httpserver.url_for("/crm"), auth_type="BEARER", auth_secret="t")
    # Stored before header-safety checks existed (saving it today is refused).
    Endpoint.objects.filter(pk=endpoint.pk).update(auth_secret_encrypted=encrypt("jeton-sécurisé"))
    response = admin_client_logged.post(button(endpoint.pk, "test"), follow=True)
    (message,) = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"


def test_change_page_and_history_never_show_secrets(admin_client_logged):
    """Neither the change page nor its history shows the signing or the auth secret."""
    endpoint, secret = make_endpoint(auth_type="BEARER", auth_secret="bearer-in-admin")
    services.endpoint_update(endpoint=endpoint, data={"frequency_minutes": 30})
    services.endpoint_rotate_secret(endpoint=endpoint)
    new = Endpoint.objects.get(pk=endpoint.pk).signing_secret
    for url in (change_url(endpoint.pk), f"{CHANGELIST}{endpoint.pk}/history/", CHANGELIST):
        response = admin_client_logged.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        for value in (secret, new, "bearer-in-admin"):
            assert value not in html
        assert "gAAAA" not in html  # no Fernet ciphertext either


@pytest.mark.parametrize("action", ["run", "test", "pause", "resume", "rotate"])
def test_buttons_refuse_get(admin_client_logged, action):
    """The button URLs change state, so GET is refused with 405 and changes nothing."""
    endpoint, secret = make_endpoint()
    response = admin_client_logged.get(button(endpoint.pk, action))
    assert response.status_code == 405
    endpoint.refresh_from_db()
    assert endpoint.is_active is True
    assert endpoint.signing_secret == secret


@pytest.mark.parametrize("action", ["pause", "rotate"])
def test_buttons_need_a_staff_login(client, action):
    """Anonymous POSTs to a button are sent to the login page and change nothing."""
    endpoint, secret = make_endpoint()
    response = client.post(button(endpoint.pk, action))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    endpoint.refresh_from_db()
    assert endpoint.is_active is True
    assert endpoint.signing_secret == secret


def test_button_on_unknown_endpoint_is_404(admin_client_logged):
    """A button for a missing endpoint is a 404."""
    assert admin_client_logged.post(button(999999, "pause")).status_code == 404


def test_buttons_need_change_permission(client):
    """A staff user who may only view endpoints gets 403 from a button, and nothing changes."""
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_endpoint"))
    client.force_login(viewer)
    endpoint, _ = make_endpoint()
    response = client.post(button(endpoint.pk, "pause"))
    assert response.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.is_active is True


# --- changelist -----------------------------------------------------------------------------


def test_changelist_shows_pending_and_parked_counts(admin_client_logged):
    """The changelist shows each endpoint's pending and parked counts and its state."""
    endpoint, _ = make_endpoint(name="Counted CRM")
    paused, _ = make_endpoint(name="Paused CRM", is_active=False)
    ids = [o["order_id"] for o in create_orders(5)]
    PendingOrder.objects.filter(endpoint=endpoint, order_id__in=ids[:2]).update(
        parked_at=timezone.now()
    )
    response = admin_client_logged.get(CHANGELIST)
    assert response.status_code == 200
    rows = {e.pk: e for e in response.context["cl"].result_list}
    assert (rows[endpoint.pk].pending_count, rows[endpoint.pk].parked_count) == (3, 2)
    assert (rows[paused.pk].pending_count, rows[paused.pk].parked_count) == (5, 0)
    html = response.content.decode()
    assert '<td class="field-pending">3</td>' in html
    assert '<td class="field-parked">2</td>' in html
    assert '<td class="field-state">paused</td>' in html


def changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_endpoints(admin_client_logged):
    """Listing 6 endpoints costs as many queries as listing 2 (no query per row)."""
    for n in range(2):
        make_endpoint(name=f"CRM {n}")
    create_orders(3)
    changelist_queries(admin_client_logged)  # warm caches (content types, session)
    two = changelist_queries(admin_client_logged)
    for n in range(2, 6):
        make_endpoint(name=f"CRM {n}")
    create_orders(3)
    six = changelist_queries(admin_client_logged)
    assert six == two


def test_change_page_renders_buttons(admin_client_logged):
    """The change page has the run, test, pause and rotate buttons as POST forms."""
    endpoint, _ = make_endpoint()
    html = admin_client_logged.get(change_url(endpoint.pk)).content.decode()
    for action in ("run", "test", "pause", "rotate"):
        assert f'<form method="post" action="{button(endpoint.pk, action)}"' in html


# --- outbox admin ---------------------------------------------------------------------------


def test_pending_order_replay_action_unparks_selected(admin_client_logged):
    """The outbox admin's replay action un-parks only the selected parked rows."""
    endpoint, _ = make_endpoint()
    ids = [o["order_id"] for o in create_orders(3)]
    PendingOrder.objects.filter(endpoint=endpoint).update(
        parked_at=timezone.now(), attempts=12, last_error="HTTP 500"
    )
    chosen = list(
        PendingOrder.objects.filter(endpoint=endpoint, order_id__in=ids[:2]).values_list(
            "pk", flat=True
        )
    )
    response = admin_client_logged.post(
        "/admin/sync/pendingorder/",
        {"action": "replay", "_selected_action": [str(pk) for pk in chosen], "index": "0"},
        follow=True,
    )
    assert response.status_code == 200
    assert any("2 parked orders" in m for m in texts(response))
    rows = {p.order_id: p for p in PendingOrder.objects.filter(endpoint=endpoint)}
    for order_id in ids[:2]:
        assert rows[order_id].parked_at is None
        assert rows[order_id].attempts == 0
        assert rows[order_id].last_error == ""
    assert rows[ids[2]].parked_at is not None
    assert rows[ids[2]].attempts == 12


def test_pending_order_changelist_filters_parked(admin_client_logged):
    """The outbox changelist's state filter shows only parked rows."""
    endpoint, _ = make_endpoint()
    ids = [o["order_id"] for o in create_orders(3)]
    PendingOrder.objects.filter(endpoint=endpoint, order_id=ids[0]).update(parked_at=timezone.now())
    response = admin_client_logged.get("/admin/sync/pendingorder/", {"state": "parked"})
    assert response.status_code == 200
    assert [p.order_id for p in response.context["cl"].result_list] == [ids[0]]
