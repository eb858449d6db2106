"""The endpoints API (/api/v1/endpoints/…) and the executions API (/api/v1/runs/): defaults,
limits, URL safety, authentication, a secret shown only at creation and rotation, manual runs,
backlog counts, parked orders and their replay."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

import sync.tasks
from sync.models import Delivery, PendingOrder, RunStatus, RunTrigger, SyncRun
from tests.factories import create_orders
from webhooks.models import AuthType, Endpoint

ENDPOINTS = "/api/v1/endpoints/"
RUNS = "/api/v1/runs/"

pytestmark = pytest.mark.django_db


def detail(pk: int) -> str:
    return f"{ENDPOINTS}{pk}/"


def create(api: APIClient, **fields) -> dict:
    """Create an endpoint through the API (asserting 201) and return the response body."""
    body = {"name": "CRM", "url": "https://crm.example.com/hooks/s360", **fields}
    response = api.post(ENDPOINTS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def post(api: APIClient, url: str, body=None):
    return api.post(url, body, format="json")


def patch(api: APIClient, pk: int, body: dict):
    return api.patch(detail(pk), body, format="json")


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """Record run_endpoint.delay calls instead of sending them to the broker."""
    calls: list[tuple] = []
    fake = SimpleNamespace(delay=lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setattr(sync.tasks, "run_endpoint", fake)
    return calls


# --- create, read, secret -------------------------------------------------------------------


def test_create_returns_201_with_documented_defaults(api):
    """A create with only name and url gets the documented defaults and is active."""
    body = create(api)
    assert body["name"] == "CRM"
    assert body["url"] == "https://crm.example.com/hooks/s360"
    assert body["frequencyMinutes"] == 15
    assert body["maxOrdersPerRun"] == 500
    assert body["ordersPerPayload"] == 50
    assert body["contentLevel"] == "TICKETS"
    assert body["maxAttempts"] == 12
    assert body["isActive"] is True
    assert body["authType"] == "NONE"
    assert body["pendingCount"] == 0
    assert body["parkedCount"] == 0
    assert Endpoint.objects.filter(pk=body["id"]).exists()


def test_create_answers_the_signing_secret_once(api):
    """The create response carries a whsec_ secret that is the one stored for signing."""
    body = create(api)
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > len("whsec_") + 40
    assert Endpoint.objects.get(pk=body["id"]).signing_secret == body["secret"]


def test_read_never_shows_the_signing_or_auth_secret(api):
    """Neither the detail nor the list shows `secret` or `authSecret`, nor their values."""
    body = create(api, authType="BEARER", authSecret="bearer-token-xyz")
    secret = body["secret"]
    assert "authSecret" not in body
    for response in (api.get(detail(body["id"])), api.get(ENDPOINTS)):
        assert response.status_code == 200
        text = response.content.decode()
        assert secret not in text
        assert "bearer-token-xyz" not in text
        items = response.json() if isinstance(response.json(), list) else [response.json()]
        for item in items:
            assert "secret" not in item
            assert "authSecret" not in item


def test_secrets_are_encrypted_at_rest(api):
    """The stored columns hold ciphertext: neither secret appears in them in clear."""
    body = create(api, authType="BEARER", authSecret="bearer-token-xyz")
    secret = body["secret"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_secret_encrypted, auth_secret_encrypted "
            "FROM webhooks_endpoint WHERE id = %s",
            [body["id"]],
        )
        signing_raw, auth_raw = cursor.fetchone()
    assert signing_raw
    assert signing_raw != secret
    assert secret not in signing_raw
    assert secret.removeprefix("whsec_") not in signing_raw
    assert auth_raw and "bearer-token-xyz" not in auth_raw
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert endpoint.signing_secret == secret
    assert endpoint.auth_secret == "bearer-token-xyz"


def test_list_shows_every_endpoint_ordered_by_name(api):
    """The list is a plain array of every endpoint, by name."""
    create(api, name="Zeta CRM")
    create(api, name="Alpha CRM")
    response = api.get(ENDPOINTS)
    assert response.status_code == 200
    assert [e["name"] for e in response.json()] == ["Alpha CRM", "Zeta CRM"]


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frequencyMinutes", 0),
        ("frequencyMinutes", 1441),
        ("maxOrdersPerRun", 0),
        ("maxOrdersPerRun", 501),
        ("ordersPerPayload", 0),
        ("ordersPerPayload", 51),
        ("maxAttempts", 0),
        ("maxAttempts", 101),
    ],
)
def test_out_of_range_limits_are_400_naming_the_field(api, field, value):
    """A value outside the documented range is a 400 naming the camelCase field; nothing saved."""
    response = post(
        api, ENDPOINTS, {"name": "CRM", "url": "https://crm.example.com/", field: value}
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("frequencyMinutes", 1), ("frequencyMinutes", 1440), ("maxOrdersPerRun", 500)],
)
def test_limits_at_the_bounds_are_accepted(api, field, value):
    """The bounds themselves are valid values."""
    assert create(api, **{field: value})[field] == value


def test_unknown_content_level_is_400(api):
    """contentLevel must be one of the S-360 levels."""
    response = post(
        api, ENDPOINTS, {"name": "CRM", "url": "https://crm.example.com/", "contentLevel": "ALL"}
    )
    assert response.status_code == 400
    assert "contentLevel" in response.json()


@pytest.mark.parametrize("level", ["OPERATIONS", "MOVEMENTS", "TICKETS"])
def test_each_content_level_is_accepted(api, level):
    """The three S-360 content levels are accepted and read back."""
    assert create(api, contentLevel=level)["contentLevel"] == level


def test_missing_name_and_url_are_400(api):
    """name and url are required."""
    response = post(api, ENDPOINTS, {})
    assert response.status_code == 400
    assert {"name", "url"} <= set(response.json())


def test_filters_are_stored_and_read_back(api):
    """Order type, state and sales channel filters are stored and read back as lists."""
    body = create(
        api,
        filterOrderTypes=["SALE", "REFUND_CLIENT"],
        filterOrderStates=["CLOSED"],
        filterSalesChannels=["WEB"],
    )
    assert body["filterOrderTypes"] == ["SALE", "REFUND_CLIENT"]
    assert body["filterOrderStates"] == ["CLOSED"]
    assert body["filterSalesChannels"] == ["WEB"]
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert endpoint.accepts("SALE", "CLOSED", "WEB")
    assert not endpoint.accepts("SALE", "CLOSED", "BOX")


@pytest.mark.parametrize(
    ("field", "value"), [("filterOrderTypes", ["GIFT"]), ("filterOrderStates", ["OPEN"])]
)
def test_unknown_filter_values_are_400(api, field, value):
    """A filter value S-360 does not have is a 400 naming the filter."""
    response = post(
        api, ENDPOINTS, {"name": "CRM", "url": "https://crm.example.com/", field: value}
    )
    assert response.status_code == 400
    assert field in response.json()


# --- url safety -------------------------------------------------------------------------------


def test_non_http_url_is_400_on_url(api):
    """Only http(s) URLs may be endpoints."""
    response = post(api, ENDPOINTS, {"name": "CRM", "url": "ftp://crm.example.com/in"})
    assert response.status_code == 400
    assert "url" in response.json()
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://192.168.1.10/hook",
        "http://localhost:8000/hook",
    ],
)
def test_private_network_url_is_400_on_url(api, settings, url):
    """With private networks not allowed, a URL into our own networks is refused (SSRF)."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = post(api, ENDPOINTS, {"name": "CRM", "url": url})
    assert response.status_code == 400
    assert "url" in response.json()
    assert not Endpoint.objects.exists()


def test_public_ip_url_is_accepted_with_private_networks_off(api, settings):
    """A public address passes the network rule (an IP literal needs no DNS)."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    assert create(api, url="http://93.184.216.34/hook")["url"] == "http://93.184.216.34/hook"


def test_patch_to_a_private_url_is_400(api, settings):
    """Changing the url goes through the same check as creating."""
    pk = create(api, url="http://93.184.216.34/hook")["id"]
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = patch(api, pk, {"url": "http://10.0.0.5/hook"})
    assert response.status_code == 400
    assert "url" in response.json()
    assert Endpoint.objects.get(pk=pk).url == "http://93.184.216.34/hook"


def test_url_with_credentials_is_400(api):
    """user:pass@ in the URL is refused: credentials belong in the endpoint's auth."""
    response = post(api, ENDPOINTS, {"name": "CRM", "url": "https://user:pass@crm.example.com/"})
    assert response.status_code == 400
    assert "url" in response.json()
    assert not Endpoint.objects.exists()


# --- authentication -----------------------------------------------------------------------


def test_basic_without_username_is_400(api):
    """Basic auth needs a user name."""
    response = post(
        api,
        ENDPOINTS,
        {"name": "CRM", "url": "https://crm.example.com/", "authType": "BASIC", "authSecret": "pw"},
    )
    assert response.status_code == 400
    assert "authUsername" in response.json()


def test_header_without_header_name_is_400(api):
    """A custom header needs its name (authUsername)."""
    response = post(
        api,
        ENDPOINTS,
        {"name": "CRM", "url": "https://crm.example.com/", "authType": "HEADER", "authSecret": "v"},
    )
    assert response.status_code == 400
    assert "authUsername" in response.json()


def test_bearer_without_secret_is_400(api):
    """A bearer token endpoint needs the token."""
    response = post(
        api, ENDPOINTS, {"name": "CRM", "url": "https://crm.example.com/", "authType": "BEARER"}
    )
    assert response.status_code == 400
    assert "authSecret" in response.json()
    assert not Endpoint.objects.exists()


def test_basic_with_username_and_secret_is_stored(api):
    """Basic auth with both parts is stored; the password is readable only server-side."""
    body = create(api, authType="BASIC", authUsername="crm-user", authSecret="crm-pass")
    assert body["authType"] == "BASIC"
    assert body["authUsername"] == "crm-user"
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert endpoint.auth_type == AuthType.BASIC
    assert endpoint.auth_secret == "crm-pass"


def test_patch_without_auth_secret_keeps_the_stored_one(api):
    """A PATCH that leaves authSecret out, or blank, keeps the stored secret."""
    pk = create(api, authType="BEARER", authSecret="token-1")["id"]
    response = patch(api, pk, {"name": "Renamed"})
    assert response.status_code == 200, response.content
    assert Endpoint.objects.get(pk=pk).auth_secret == "token-1"
    response = patch(api, pk, {"authSecret": ""})
    assert response.status_code == 200, response.content
    assert Endpoint.objects.get(pk=pk).auth_secret == "token-1"


def test_patch_with_auth_secret_replaces_it(api):
    """A PATCH with a new authSecret replaces the stored one."""
    pk = create(api, authType="BEARER", authSecret="token-1")["id"]
    assert patch(api, pk, {"authSecret": "token-2"}).status_code == 200
    assert Endpoint.objects.get(pk=pk).auth_secret == "token-2"


def test_switching_to_no_authentication_forgets_the_auth_secret(api):
    """No authentication, no secret kept: nothing a later key rotation would have to read,
    and switching back asks for the token again."""
    pk = create(api, authType="BEARER", authSecret="token-1")["id"]
    assert patch(api, pk, {"authType": "NONE"}).status_code == 200
    assert Endpoint.objects.get(pk=pk).auth_secret_encrypted == ""
    response = patch(api, pk, {"authType": "BEARER"})
    assert response.status_code == 400
    assert "authSecret" in response.json()


def test_patch_to_bearer_without_any_secret_is_400(api):
    """Switching a signature-only endpoint to bearer needs the token."""
    pk = create(api)["id"]
    response = patch(api, pk, {"authType": "BEARER"})
    assert response.status_code == 400
    assert "authSecret" in response.json()
    assert Endpoint.objects.get(pk=pk).auth_type == AuthType.NONE


# --- update ---------------------------------------------------------------------------------


def test_patch_frequency_keeps_the_signing_secret(api):
    """Changing the frequency changes only that: the signing secret stays the same."""
    body = create(api)
    response = patch(api, body["id"], {"frequencyMinutes": 60})
    assert response.status_code == 200
    assert response.json()["frequencyMinutes"] == 60
    assert "secret" not in response.json()
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert endpoint.frequency_minutes == 60
    assert endpoint.signing_secret == body["secret"]


def test_patch_shorter_frequency_brings_the_next_run_forward(api):
    """A shorter frequency applies at the next tick: nextRunAt moves to last run + new period."""
    pk = create(api)["id"]
    last = timezone.now().replace(microsecond=0)
    Endpoint.objects.filter(pk=pk).update(
        last_run_at=last, next_sync_at=last + dt.timedelta(minutes=60)
    )
    body = patch(api, pk, {"frequencyMinutes": 5}).json()
    assert dt.datetime.fromisoformat(body["nextRunAt"]) == last + dt.timedelta(minutes=5)
    body = patch(api, pk, {"frequencyMinutes": 120}).json()
    assert dt.datetime.fromisoformat(body["nextRunAt"]) == last + dt.timedelta(minutes=5)


def test_patch_out_of_range_frequency_is_400(api):
    """The limits hold on PATCH too."""
    pk = create(api)["id"]
    response = patch(api, pk, {"frequencyMinutes": 1441})
    assert response.status_code == 400
    assert "frequencyMinutes" in response.json()
    assert Endpoint.objects.get(pk=pk).frequency_minutes == 15


def test_patch_is_active_false_pauses(api):
    """isActive false pauses the endpoint, and a later GET shows it."""
    pk = create(api)["id"]
    assert patch(api, pk, {"isActive": False}).json()["isActive"] is False
    assert api.get(detail(pk)).json()["isActive"] is False
    assert Endpoint.objects.get(pk=pk).is_active is False


def test_resume_clears_the_disabled_reason(api):
    """Resuming an endpoint a 410 switched off clears why it was switched off."""
    pk = create(api)["id"]
    Endpoint.objects.filter(pk=pk).update(is_active=False, disabled_reason="410 Gone")
    body = patch(api, pk, {"isActive": True}).json()
    assert body["isActive"] is True
    assert body["disabledReason"] == ""


def test_delete_removes_the_endpoint_and_its_outbox(api):
    """DELETE removes the endpoint and what it still owed."""
    pk = create(api)["id"]
    create_orders(2)
    assert PendingOrder.objects.filter(endpoint_id=pk).count() == 2
    assert api.delete(detail(pk)).status_code == 204
    assert not Endpoint.objects.filter(pk=pk).exists()
    assert not PendingOrder.objects.filter(endpoint_id=pk).exists()


# --- rotation and history -------------------------------------------------------------------


def test_rotate_secret_returns_a_new_secret_and_stores_it(api):
    """rotate-secret answers a new, different whsec_ secret, which is now the stored one."""
    body = create(api)
    response = post(api, f"{detail(body['id'])}rotate-secret/")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_")
    assert new != body["secret"]
    assert Endpoint.objects.get(pk=body["id"]).signing_secret == new
    assert new not in api.get(detail(body["id"])).content.decode()


def test_rotate_secret_on_unknown_endpoint_is_404(api):
    """Rotating a missing endpoint is a 404."""
    assert post(api, f"{detail(999999)}rotate-secret/").status_code == 404


def test_history_records_create_and_update(api):
    """Endpoint.history keeps a record of the creation and of each change."""
    pk = create(api)["id"]
    patch(api, pk, {"frequencyMinutes": 30})
    records = list(Endpoint.history.filter(id=pk).order_by("history_date", "history_id"))
    assert [r.history_type for r in records] == ["+", "~"]
    assert records[0].frequency_minutes == 15
    assert records[1].frequency_minutes == 30


# --- run now --------------------------------------------------------------------------------


def test_run_queues_one_execution(api, queued, django_capture_on_commit_callbacks):
    """POST run/ answers 202 and queues one execution of this endpoint, after commit."""
    pk = create(api)["id"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(api, f"{detail(pk)}run/")
    assert response.status_code == 202
    assert response.json() == {"queued": True}
    assert len(callbacks) == 1
    assert queued == [((pk, RunTrigger.MANUAL), {})]


def test_run_is_queued_only_on_commit(api, queued, django_capture_on_commit_callbacks):
    """Nothing goes to the broker before the transaction commits."""
    pk = create(api)["id"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert post(api, f"{detail(pk)}run/").status_code == 202
    assert len(callbacks) == 1
    assert queued == []


def test_run_on_a_paused_endpoint_is_409(api, queued, django_capture_on_commit_callbacks):
    """A paused endpoint is not run: 409, and nothing is queued."""
    pk = create(api, isActive=False)["id"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(api, f"{detail(pk)}run/")
    assert response.status_code == 409
    assert "detail" in response.json()
    assert callbacks == []
    assert queued == []


def test_run_while_the_crm_asked_to_wait_is_409_saying_until_when(
    api, queued, django_capture_on_commit_callbacks
):
    """After a 429/503 with Retry-After, "run now" is refused until the wait ends; the
    endpoint shows when that is (waitUntil), and null once it has passed."""
    pk = create(api)["id"]
    assert api.get(detail(pk)).json()["waitUntil"] is None
    until = timezone.now() + dt.timedelta(minutes=5)
    Endpoint.objects.filter(pk=pk).update(wait_until=until)
    assert api.get(detail(pk)).json()["waitUntil"] == until.isoformat().replace("+00:00", "Z")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{detail(pk)}run/")
    assert response.status_code == 409
    assert f"{until:%H:%M:%S} UTC (Retry-After)" in response.json()["detail"]
    assert queued == []
    Endpoint.objects.filter(pk=pk).update(wait_until=timezone.now() - dt.timedelta(seconds=1))
    assert api.get(detail(pk)).json()["waitUntil"] is None
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, f"{detail(pk)}run/").status_code == 202
    assert len(queued) == 1


def test_run_is_post_only(api):
    """GET on run/ is not allowed."""
    pk = create(api)["id"]
    assert api.get(f"{detail(pk)}run/").status_code == 405


# --- backlog counts, parked orders, replay --------------------------------------------------


def park(endpoint_id: int, order_ids, error: str = "HTTP 500") -> None:
    PendingOrder.objects.filter(endpoint_id=endpoint_id, order_id__in=order_ids).update(
        parked_at=timezone.now(), attempts=12, last_error=error
    )


def test_pending_and_parked_counts(api):
    """pendingCount counts unparked outbox rows, parkedCount parked ones, per endpoint."""
    pk = create(api)["id"]
    other = create(api, name="Other CRM")["id"]
    orders = create_orders(5)
    park(pk, [o["order_id"] for o in orders[:2]])
    body = api.get(detail(pk)).json()
    assert (body["pendingCount"], body["parkedCount"]) == (3, 2)
    listed = {e["id"]: e for e in api.get(ENDPOINTS).json()}
    assert (listed[pk]["pendingCount"], listed[pk]["parkedCount"]) == (3, 2)
    assert (listed[other]["pendingCount"], listed[other]["parkedCount"]) == (5, 0)


def test_orders_written_before_the_endpoint_are_not_pending_for_it(api):
    """An endpoint starts with an empty backlog: only later changes queue for it."""
    create_orders(3)
    body = create(api)
    assert (body["pendingCount"], body["parkedCount"]) == (0, 0)


def test_parked_lists_parked_orders_with_attempts_and_error(api):
    """parked/ lists only the parked orders of this endpoint, with attempts and last error."""
    pk = create(api)["id"]
    other = create(api, name="Other CRM")["id"]
    orders = create_orders(4)
    ids = [o["order_id"] for o in orders]
    park(pk, ids[:2], error="HTTP 502")
    park(other, ids[2:])
    response = api.get(f"{detail(pk)}parked/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert {r["orderId"] for r in results} == set(ids[:2])
    for row in results:
        assert row["attempts"] == 12
        assert row["lastError"] == "HTTP 502"
        assert row["parkedAt"]
        assert row["syncVersion"] == 1
        assert row["syncReason"] == "CHANGE"


def test_replay_only_the_given_order_ids(api):
    """replay with orderIds un-parks just those, with a fresh retry budget."""
    pk = create(api)["id"]
    ids = [o["order_id"] for o in create_orders(3)]
    park(pk, ids)
    response = post(api, f"{detail(pk)}parked/replay/", {"orderIds": ids[:2]})
    assert response.status_code == 200
    assert response.json() == {"replayed": 2}
    rows = {p.order_id: p for p in PendingOrder.objects.filter(endpoint_id=pk)}
    for order_id in ids[:2]:
        assert rows[order_id].parked_at is None
        assert rows[order_id].attempts == 0
        assert rows[order_id].last_error == ""
    assert rows[ids[2]].parked_at is not None
    assert rows[ids[2]].attempts == 12


def test_replay_without_body_replays_all_of_this_endpoint(api):
    """replay with no body un-parks every parked order of this endpoint, not of others."""
    pk = create(api)["id"]
    other = create(api, name="Other CRM")["id"]
    ids = [o["order_id"] for o in create_orders(3)]
    park(pk, ids)
    park(other, ids)
    response = api.post(f"{detail(pk)}parked/replay/")
    assert response.status_code == 200
    assert response.json() == {"replayed": 3}
    assert not PendingOrder.objects.filter(endpoint_id=pk, parked_at__isnull=False).exists()
    assert PendingOrder.objects.filter(endpoint_id=other, parked_at__isnull=False).count() == 3
    assert api.get(f"{detail(pk)}parked/").json()["results"] == []


@pytest.mark.parametrize("order_ids", ["12", [1, "two"], {"a": 1}, [1.5]])
def test_replay_with_bad_order_ids_is_400(api, order_ids):
    """orderIds must be a list of integers; nothing is replayed otherwise."""
    pk = create(api)["id"]
    ids = [o["order_id"] for o in create_orders(1)]
    park(pk, ids)
    response = post(api, f"{detail(pk)}parked/replay/", {"orderIds": order_ids})
    assert response.status_code == 400
    assert "orderIds" in response.json()
    assert PendingOrder.objects.get(endpoint_id=pk).parked_at is not None


# --- executions -----------------------------------------------------------------------------


def make_run(endpoint_id: int, started: dt.datetime, deliveries: int = 1) -> SyncRun:
    run = SyncRun.objects.create(
        endpoint_id=endpoint_id,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.SUCCEEDED,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=2),
        orders_claimed=2 * deliveries,
        orders_delivered=2 * deliveries,
        payloads=deliveries,
    )
    for n in range(deliveries):
        Delivery.objects.create(
            run=run,
            endpoint_id=endpoint_id,
            payload_id=f"msg_{run.pk}_{n}",
            order_ids=[10 + n, 20 + n],
            versions=[1, 3],
            attempted_at=started + dt.timedelta(seconds=n),
            duration_ms=40,
            status_code=200,
            ok=True,
            response_excerpt='{"applied": 2}',
        )
    return run


def test_runs_are_listed_newest_first_with_deliveries(api):
    """runs/?endpoint= lists that endpoint's executions, newest first, with deliveries."""
    pk = create(api)["id"]
    now = timezone.now()
    old = make_run(pk, now - dt.timedelta(hours=2))
    new = make_run(pk, now - dt.timedelta(minutes=5), deliveries=2)
    response = api.get(RUNS, {"endpoint": pk})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [new.pk, old.pk]
    first = results[0]
    assert first["endpoint"] == pk
    assert first["status"] == "SUCCEEDED"
    assert first["trigger"] == "SCHEDULE"
    assert (first["ordersClaimed"], first["ordersDelivered"], first["ordersFailed"]) == (4, 4, 0)
    assert first["payloads"] == 2
    assert {d["payloadId"] for d in first["deliveries"]} == {f"msg_{new.pk}_0", f"msg_{new.pk}_1"}
    delivery = first["deliveries"][0]
    assert delivery["statusCode"] == 200
    assert delivery["ok"] is True
    assert delivery["syncVersions"] == [1, 3]
    assert len(delivery["orderIds"]) == 2


def test_runs_filter_excludes_other_endpoints(api):
    """The endpoint filter leaves other endpoints' executions out."""
    pk = create(api)["id"]
    other = create(api, name="Other CRM")["id"]
    mine = make_run(pk, timezone.now())
    theirs = make_run(other, timezone.now())
    ids = [r["id"] for r in api.get(RUNS, {"endpoint": pk}).json()["results"]]
    assert ids == [mine.pk]
    everything = {r["id"] for r in api.get(RUNS).json()["results"]}
    assert everything == {mine.pk, theirs.pk}


def test_a_real_execution_shows_in_runs(api, httpserver):
    """An execution against a CRM answering 200 is listed with its delivery and counts."""
    from sync.services import execution_run

    httpserver.expect_request("/crm", method="POST").respond_with_json({"applied": 3})
    pk = create(api, url=httpserver.url_for("/crm"))["id"]
    orders = create_orders(3)
    run = execution_run(endpoint_id=pk)
    assert run is not None
    results = api.get(RUNS, {"endpoint": pk}).json()["results"]
    assert [r["id"] for r in results] == [run.pk]
    assert results[0]["status"] == "SUCCEEDED"
    assert results[0]["ordersDelivered"] == 3
    (delivery,) = results[0]["deliveries"]
    assert delivery["statusCode"] == 200
    assert sorted(delivery["orderIds"]) == sorted(o["order_id"] for o in orders)
    assert api.get(detail(pk)).json()["pendingCount"] == 0


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ENDPOINTS),
        ("post", ENDPOINTS),
        ("get", f"{ENDPOINTS}1/"),
        ("post", f"{ENDPOINTS}1/run/"),
        ("post", f"{ENDPOINTS}1/rotate-secret/"),
        ("get", RUNS),
    ],
)
def test_unauthenticated_is_401(db, method, path):
    """Without a token every endpoint and run route answers 401."""
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_unauthenticated_cannot_rotate(db):
    """An anonymous rotate changes nothing."""
    endpoint = Endpoint.objects.create(name="CRM", url="https://crm.example.com/")
    endpoint.signing_secret = "whsec_" + "A" * 44
    endpoint.save()
    assert APIClient().post(f"{detail(endpoint.pk)}rotate-secret/").status_code == 401
    assert Endpoint.objects.get(pk=endpoint.pk).signing_secret == "whsec_" + "A" * 44


@pytest.mark.parametrize(
    "path", [f"{ENDPOINTS}999999/", f"{ENDPOINTS}999999/parked/", f"{ENDPOINTS}abc/"]
)
def test_unknown_endpoint_is_404_json(api, path):
    """An unknown endpoint id is a JSON 404."""
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_run_unknown_endpoint_is_404(api):
    """Running a missing endpoint is a 404."""
    assert post(api, f"{detail(999999)}run/").status_code == 404


def test_replay_with_a_bare_list_body_is_400_not_replay_all(api):
    """A body that is not an object (a bare list of ids) is bad input, not 'replay all'."""
    pk = create(api)["id"]
    ids = [o["order_id"] for o in create_orders(3)]
    park(pk, ids)
    response = post(api, f"{detail(pk)}parked/replay/", [ids[0]])
    assert response.status_code == 400
    assert PendingOrder.objects.filter(endpoint_id=pk, parked_at__isnull=False).count() == 3


@pytest.mark.parametrize(
    "header, field",
    [
        ("webhook-signature", "authUsername"),
        ("Content-Type", "authUsername"),
        ("X Api Key", "authUsername"),
    ],
)
def test_a_custom_auth_header_cannot_replace_a_signed_header(api, header, field):
    """A custom header name must be a plain name the sync engine does not set itself."""
    response = api.post(
        "/api/v1/endpoints/",
        {
            "name": "x",
            "url": "https://crm.example.com/h",
            "authType": "HEADER",
            "authUsername": header,
            "authSecret": "v",
        },
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()


def test_a_non_ascii_auth_secret_is_refused_at_save(api):
    """An auth value that cannot travel in an HTTP header is refused when it is saved."""
    response = api.post(
        "/api/v1/endpoints/",
        {
            "name": "x",
            "url": "https://crm.example.com/h",
            "authType": "BEARER",
            "authSecret": "jeton-sécurisé",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "authSecret" in response.json()


def test_replay_refuses_booleans_as_order_ids(api):
    """`true` is not an orderId."""
    pk = create(api)["id"]
    response = post(api, f"{detail(pk)}parked/replay/", {"orderIds": [True]})
    assert response.status_code == 400


# --- found by fuzzing (tests/test_schemathesis.py) ----------------------------------------------


def test_never_run_endpoints_have_null_run_times_as_the_schema_says(api):
    """lastRunAt and nextRunAt are null until the first execution; the schema said string."""
    from drf_spectacular.generators import SchemaGenerator

    assert (create(api)["lastRunAt"], create(api, name="Two")["nextRunAt"]) == (None, None)
    props = SchemaGenerator().get_schema(public=True)["components"]["schemas"]["Endpoint"]
    assert props["properties"]["lastRunAt"]["nullable"] is True
    assert props["properties"]["nextRunAt"]["nullable"] is True


@pytest.mark.parametrize("order_ids", [[2**63], [-(2**63) - 1], [10**30]])
def test_replaying_order_ids_past_the_64_bit_range_is_a_400(api, order_ids):
    """It was a 500: the database cannot even compare such a number."""
    pk = create(api)["id"]
    response = post(api, f"{detail(pk)}parked/replay/", {"orderIds": order_ids})
    assert response.status_code == 400
    assert "orderIds" in response.json()


@pytest.mark.parametrize("value", ["9" * 40, "-4.35e+279", "1.5", "x"])
def test_the_runs_endpoint_filter_takes_only_an_id(api, value):
    """A 300-digit or float endpoint id was a 500 (overflow); now a 400 naming the filter."""
    response = api.get(RUNS, {"endpoint": value})
    assert response.status_code == 400
    assert "endpoint" in response.json()
