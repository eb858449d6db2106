"""Who may do what: every role (and the users without one) against every sensitive action,
through the admin and through the API. An allowed action succeeds; a denied one is refused
(admin: 403, or the login page for non-staff; API: 403, or 401 without a login) and leaves the
database exactly as it was.

The matrix below is the contract. It follows the groups made by sync/migrations/0004_roles.py
and the README's "Roles" table: reading needs the role's view permission (a user whose role
was taken away reads nothing), and each write needs its own permission.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from importlib import import_module
from typing import Any, NamedTuple

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import reconciliation.tasks
import sync.tasks
from orders.models import Order
from orders.services import orders_bulk_upsert
from reconciliation.models import Difference, Reconciliation
from sync import imports
from sync.models import Delivery, InitialImport, PendingOrder, SyncRun
from tests.factories import UserFactory, endpoint_admin_form, order_data, order_json
from tests.test_admin import form_post_data
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db
ROLES = import_module("sync.migrations.0004_roles")

# --- The intended matrix --------------------------------------------------------------------

READ_SYNC = {
    "view endpoint",
    "read orders",
    "export orders",
    "see executions",
    "see deliveries",
    "see parked orders",
    "see imports",
}
READ = READ_SYNC | {"download report", "see reconciliation", "read the demo CRM"}
CONFIGURE = {
    "create endpoint",
    "update endpoint",
    "delete endpoint",
    "rotate secret",
    "run now",
    "send test payload",
    "pause/resume",
}
SUPPORT = {
    "flag initial import",
    "flag selected orders",
    "cancel import",
    "replay parked",
    "upload reconciliation",
    "re-sync differences",
}
FEED = {"create order", "update order", "bulk orders"}

ALLOWED: dict[str, set[str]] = {
    "Integrator": READ | CONFIGURE,
    "Support": READ | SUPPORT,
    "Read-only": READ,
    # Feeds orders in and reads sync state; reconciliations are not theirs to read.
    "API client": FEED | READ_SYNC,
    "staff, no role": set(),
    "non-staff user": set(),
    "anonymous": set(),
}
WHO = list(ALLOWED)

# --- The world every action runs against ----------------------------------------------------

T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
CRM_CSV = b"ORDER_ID;ORDER_STATE\n1;CLOSED\n"


class World(NamedTuple):
    endpoint: Endpoint
    order_id: int
    parked: PendingOrder
    an_import: InitialImport
    reconciliation: Reconciliation
    crm: Any  # the pytest-httpserver standing in for the CRM
    queued: list  # tasks the actions queued (run_endpoint, run_reconciliation)


@pytest.fixture
def world(db, monkeypatch, httpserver) -> World:
    ROLES.create_roles(apps, None)  # as `migrate` leaves them (the test database may not)
    queued: list = []
    for task in (sync.tasks.run_endpoint, reconciliation.tasks.run_reconciliation):
        monkeypatch.setattr(task, "delay", lambda *a, _name=task.name, **k: queued.append(_name))
    httpserver.expect_request("/crm").respond_with_data("ok")
    # Orders of May (for the import in place) and June (for an import to flag) exist first...
    orders_bulk_upsert(
        orders=[order_data(creation_date_time=T0), order_data(creation_date_time=T1)]
    )
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": httpserver.url_for("/crm")})
    an_import = imports.initial_import_create(
        endpoint=endpoint, created_from=T0, created_to=T0 + dt.timedelta(days=1)
    )
    # ...then a change after the endpoint exists, parked after its retry budget.
    changed = order_data()
    orders_bulk_upsert(orders=[changed])
    parked = PendingOrder.objects.get(order_id=changed["order_id"])
    PendingOrder.objects.filter(pk=parked.pk).update(
        parked_at=timezone.now(), attempts=12, last_error="HTTP 500"
    )
    run = SyncRun.objects.create(endpoint=endpoint, trigger="SCHEDULE", started_at=timezone.now())
    Delivery.objects.create(
        run=run, endpoint=endpoint, payload_id="msg_1", attempted_at=timezone.now()
    )
    record = Reconciliation.objects.create(
        status=Reconciliation.Status.DONE, key_columns=["ORDER_ID"], summary={"matched": 0}
    )
    record.crm_file.save("crm.csv", ContentFile(CRM_CSV))
    Difference.objects.create(
        reconciliation=record, kind=Difference.Kind.ONLY_IN_S360, key=str(changed["order_id"])
    )
    return World(endpoint, changed["order_id"], parked, an_import, record, httpserver, queued)


def snapshot() -> dict[str, Any]:
    """Everything an action could change."""

    def rows(model: Any) -> list[dict]:
        return list(model.objects.order_by("pk").values())

    return {
        "endpoints": rows(Endpoint),
        "endpoint history": Endpoint.history.count(),
        "orders": list(Order.objects.order_by("pk").values_list("pk", "sync_version")),
        "outbox": rows(PendingOrder),
        "imports": rows(InitialImport),
        "runs": rows(SyncRun),
        "deliveries": rows(Delivery),
        "reconciliations": rows(Reconciliation),
    }


# --- Each action, as the admin and the API offer it -----------------------------------------

ENDPOINTS_ADMIN = "/admin/webhooks/endpoint/"
ENDPOINT_FORM = endpoint_admin_form(name="Other CRM", url="https://crm.example.com/other")
NEW_ORDER_FORM = {
    "order_id": "77000000001",
    "order_state": "CLOSED",
    "order_type": "SALE",
    "order_originator": "DESK",
    "creation_date_time_0": "2025-05-04",
    "creation_date_time_1": "12:00:00",
    "contact_reference": "0000042000",
    "sales_channel_code": "BOX",
    "currency_code": "CHF",
    "currency_fraction_digit": "2",
    "sale_amount": "40000",
    "_save": "Save",
}


def admin_form(client: Client, url: str, changes: dict[str, str]) -> Any:
    """POST the form at `url` as a browser would, with these changes. Someone who may not
    open the form posts the changes alone (and must be refused all the same)."""
    page = client.get(url)
    data = form_post_data(client, url) if page.status_code == 200 else {}
    return client.post(url, {**data, **changes})


def admin_button(name: str) -> Callable:
    return lambda c, w: c.post(f"{ENDPOINTS_ADMIN}{w.endpoint.pk}/{name}/")


def admin_import(c: Client, w: World) -> Any:
    return c.post(
        "/admin/sync/initialimport/add/",
        {
            "endpoint": str(w.endpoint.pk),
            "created_from_0": "2025-06-01",
            "created_from_1": "00:00:00",
            "created_to_0": "2025-06-02",
            "created_to_1": "00:00:00",
            "_confirm": "Confirm",
        },
    )


def admin_upload(c: Client, w: World) -> Any:
    return c.post(
        "/admin/reconciliation/reconciliation/add/",
        {
            "crm_file": ContentFile(CRM_CSV, name="crm.csv"),
            "key_columns": "ORDER_ID",
            "numeric_tolerance": "0",
            "_compare": "Compare",
        },
    )


def recon_admin(w: World, rest: str) -> str:
    return f"/admin/reconciliation/reconciliation/{w.reconciliation.pk}/{rest}"


# Each action: (admin request or None, the admin's success code), API request or None.
Request = Callable[[Any, World], Any]
ACTIONS: dict[str, tuple[Request | None, int, Request | None]] = {
    "create endpoint": (
        lambda c, w: c.post(f"{ENDPOINTS_ADMIN}add/", ENDPOINT_FORM),
        200,  # the page showing the new signing secret
        lambda c, w: c.post(
            "/api/v1/endpoints/", {"name": "Other", "url": "https://crm.example.com/o"}
        ),
    ),
    "update endpoint": (
        lambda c, w: admin_form(
            c, f"{ENDPOINTS_ADMIN}{w.endpoint.pk}/change/", {"frequency_minutes": "5"}
        ),
        302,
        lambda c, w: c.patch(f"/api/v1/endpoints/{w.endpoint.pk}/", {"frequencyMinutes": 5}),
    ),
    "delete endpoint": (
        lambda c, w: c.post(f"{ENDPOINTS_ADMIN}{w.endpoint.pk}/delete/", {"post": "yes"}),
        302,
        lambda c, w: c.delete(f"/api/v1/endpoints/{w.endpoint.pk}/"),
    ),
    "view endpoint": (
        lambda c, w: c.get(f"{ENDPOINTS_ADMIN}{w.endpoint.pk}/change/"),
        200,
        lambda c, w: c.get(f"/api/v1/endpoints/{w.endpoint.pk}/"),
    ),
    "rotate secret": (
        admin_button("rotate"),
        200,  # the page showing the new signing secret
        lambda c, w: c.post(f"/api/v1/endpoints/{w.endpoint.pk}/rotate-secret/"),
    ),
    "run now": (
        admin_button("run"),
        302,
        lambda c, w: c.post(f"/api/v1/endpoints/{w.endpoint.pk}/run/"),
    ),
    "send test payload": (admin_button("test"), 302, None),  # an admin button only
    "pause/resume": (
        admin_button("pause"),
        302,
        lambda c, w: c.patch(f"/api/v1/endpoints/{w.endpoint.pk}/", {"isActive": False}),
    ),
    "flag initial import": (
        admin_import,
        302,
        lambda c, w: c.post(
            f"/api/v1/endpoints/{w.endpoint.pk}/initial-imports/",
            {"createdFrom": "2025-06-01", "createdTo": "2025-06-02"},
        ),
    ),
    "flag selected orders": (  # the orders list's action, then its endpoint page
        lambda c, w: c.post(
            "/admin/orders/order/",
            {
                "action": "flag_for_initial_import",
                "_selected_action": [str(w.order_id)],
                "index": "0",
                "endpoint": str(w.endpoint.pk),
            },
        ),
        302,
        None,  # the API flags a timeframe ("flag initial import")
    ),
    "cancel import": (
        lambda c, w: c.post(f"/admin/sync/initialimport/{w.an_import.pk}/cancel/"),
        302,
        lambda c, w: c.post(f"/api/v1/initial-imports/{w.an_import.pk}/cancel/"),
    ),
    "replay parked": (
        lambda c, w: c.post(
            "/admin/sync/pendingorder/",
            {"action": "replay", "_selected_action": [str(w.parked.pk)], "index": "0"},
        ),
        302,
        lambda c, w: c.post(f"/api/v1/endpoints/{w.endpoint.pk}/parked/replay/", {}),
    ),
    "create order": (
        lambda c, w: admin_form(c, "/admin/orders/order/add/", NEW_ORDER_FORM),
        302,
        lambda c, w: c.post("/api/v1/orders/", order_json()),
    ),
    "update order": (
        lambda c, w: admin_form(
            c, f"/admin/orders/order/{w.order_id}/change/", {"contact_reference": "0099"}
        ),
        302,
        lambda c, w: c.patch(f"/api/v1/orders/{w.order_id}/", {"contactReference": "0099"}),
    ),
    "bulk orders": (None, 0, lambda c, w: c.post("/api/v1/orders/bulk/", [order_json()])),
    "export orders": (None, 0, lambda c, w: c.get("/api/v1/orders/export/")),
    "upload reconciliation": (
        admin_upload,
        302,
        lambda c, w: c.post(
            "/api/v1/reconciliations/",
            {"crmFile": io.BytesIO(CRM_CSV)},
            format="multipart",
        ),
    ),
    "re-sync differences": (
        lambda c, w: c.post(recon_admin(w, "resync/"), {"endpoint": w.endpoint.pk}),
        302,
        lambda c, w: c.post(
            f"/api/v1/reconciliations/{w.reconciliation.pk}/resync/",
            {"endpoint": w.endpoint.pk},
        ),
    ),
    "download report": (
        lambda c, w: c.get(recon_admin(w, "report.csv")),
        200,
        lambda c, w: c.get(f"/api/v1/reconciliations/{w.reconciliation.pk}/report.csv"),
    ),
    "see executions": (
        lambda c, w: c.get("/admin/sync/syncrun/"),
        200,
        lambda c, w: c.get(f"/api/v1/runs/?endpoint={w.endpoint.pk}"),
    ),
    "see deliveries": (lambda c, w: c.get("/admin/sync/delivery/"), 200, None),  # API: in runs
    "read orders": (
        lambda c, w: c.get(f"/admin/orders/order/{w.order_id}/change/"),
        200,
        lambda c, w: c.get(f"/api/v1/orders/{w.order_id}/"),
    ),
    "see parked orders": (
        lambda c, w: c.get("/admin/sync/pendingorder/"),
        200,
        lambda c, w: c.get(f"/api/v1/endpoints/{w.endpoint.pk}/parked/"),
    ),
    "see imports": (
        lambda c, w: c.get(f"/admin/sync/initialimport/{w.an_import.pk}/change/"),
        200,
        lambda c, w: c.get(f"/api/v1/initial-imports/{w.an_import.pk}/"),
    ),
    "see reconciliation": (
        lambda c, w: c.get(recon_admin(w, "change/")),
        200,
        lambda c, w: c.get(f"/api/v1/reconciliations/{w.reconciliation.pk}/"),
    ),
    "read the demo CRM": (lambda c, w: c.get("/democrm/export.csv"), 200, None),
}

assert set().union(*ALLOWED.values()) <= set(ACTIONS)


def user_for(who: str) -> Any:
    if who == "anonymous":
        return None
    user = UserFactory(is_staff=who != "non-staff user")
    if who in ROLES.ROLES:
        user.groups.add(Group.objects.get(name=who))
    return user


def admin_client(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def api_client(user: Any) -> APIClient:
    client = APIClient()
    client.default_format = "json"
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


CASES = [
    pytest.param(who, action, via, id=f"{who}-{action}-{via}")
    for who in WHO
    for action, (admin_call, _, api_call) in ACTIONS.items()
    for via, call in (("admin", admin_call), ("api", api_call))
    if call is not None
]


@pytest.mark.parametrize("who, action, via", CASES)
def test_permission_matrix(world, who, action, via, django_capture_on_commit_callbacks):
    admin_call, admin_success, api_call = ACTIONS[action]
    user = user_for(who)
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True):  # tasks are queued on commit
        if via == "admin":
            response = admin_call(admin_client(user), world)
        else:
            response = api_call(api_client(user), world)
    code = response.status_code
    where = response.get("Location", "")

    if action in ALLOWED[who]:
        if via == "admin":
            assert code == admin_success, (code, where, getattr(response, "content", b"")[:300])
            assert "/login/" not in where
        else:
            assert 200 <= code < 300, (code, response.content[:300])
        # ...and it really happened (an ignored admin action would redirect all the same).
        if action == "run now":
            assert world.queued == ["sync.tasks.run_endpoint"]
        elif action == "send test payload":
            assert world.crm.log
        elif action not in READ:
            assert snapshot() != before, "an allowed action changed nothing"
        return

    if via == "admin" and who in ("anonymous", "non-staff user"):
        assert code == 302 and where.startswith("/admin/login/"), (code, where)
    elif via == "api" and who == "anonymous":
        assert code == 401, code
    else:
        assert code == 403, (code, where)
    if via == "api":
        assert response["Content-Type"].startswith("application/json")
    assert snapshot() == before, "a refused action changed the database"
    assert not world.queued, "a refused action queued a task"
    assert not world.crm.log, "a refused action reached the CRM"


@pytest.mark.parametrize(
    "url, action",
    [
        ("/admin/orders/order/", "flag_for_initial_import"),
        ("/admin/sync/pendingorder/", "replay"),
        ("/admin/webhooks/endpoint/", "delete_selected"),  # Django's own action
    ],
)
def test_an_admin_action_not_allowed_is_403_whichever_form_posts_it(world, url, action):
    """The changelist has an action form above the list and one below; Django runs the
    action of the form that was submitted (`index`). Whichever it is, an action the user
    may not run is refused, not silently ignored."""
    client = admin_client(user_for("Read-only"))
    ids = {
        "flag_for_initial_import": world.order_id,
        "replay": world.parked.pk,
        "delete_selected": world.endpoint.pk,
    }
    before = snapshot()
    for posted, index in (([action], "0"), (["", action], "1"), ([action, ""], "0")):
        response = client.post(
            url, {"action": posted, "_selected_action": [str(ids[action])], "index": index}
        )
        assert response.status_code == 403, (posted, index, response.status_code)
    # An empty choice in the submitted form is Django's "No action selected", as before.
    response = client.post(
        url, {"action": ["", action], "_selected_action": [str(ids[action])], "index": "0"}
    )
    assert response.status_code in (200, 302)
    assert snapshot() == before
