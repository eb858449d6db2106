"""Roles for initial imports, in the admin and the API: support staff flag and cancel imports
but cannot change endpoints; integrators change endpoints but cannot flag or cancel; any
logged-in user may read; anonymous users get 401."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order
from orders.services import orders_bulk_upsert
from sync import imports
from sync.models import InitialImport, PendingOrder
from tests.factories import UserFactory, order_data
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 5, 2, tzinfo=dt.UTC)
BODY = {"createdFrom": "2025-05-01", "createdTo": "2025-05-02"}

SUPPORT = (
    "sync.add_initialimport",
    "sync.change_initialimport",
    "sync.view_initialimport",
    "orders.view_order",
    "webhooks.view_endpoint",
    "sync.view_pendingorder",
    "sync.change_pendingorder",
)
INTEGRATOR = ("webhooks.add_endpoint", "webhooks.change_endpoint", "webhooks.view_endpoint")


def user_with(username: str, perms: tuple[str, ...], *, staff: bool = True) -> User:
    """A (staff) user holding exactly these `app_label.codename` permissions."""
    user = UserFactory(username=username, is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


def api_for(user: User | None) -> APIClient:
    """An API client with the user's DRF token (none: anonymous)."""
    client = APIClient()
    if user is not None:
        token = Token.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def admin_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def endpoint() -> Endpoint:
    """An endpoint created after two orders of T0's day (so none is pending yet)."""
    orders_bulk_upsert(
        orders=[
            order_data(creation_date_time=T0 + dt.timedelta(hours=1)),
            order_data(creation_date_time=T0 + dt.timedelta(hours=2)),
        ]
    )
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/x"})
    return endpoint


@pytest.fixture
def an_import(endpoint) -> InitialImport:
    return imports.initial_import_create(endpoint=endpoint, created_from=T0, created_to=T1)


@pytest.fixture
def support() -> User:
    return user_with("support", SUPPORT)


@pytest.fixture
def integrator() -> User:
    return user_with("integrator", INTEGRATOR)


@pytest.fixture
def nobody() -> User:
    """Logged in, no permission at all (and not staff)."""
    return user_with("nobody", (), staff=False)


def order_actions(user: User) -> set[str]:
    """The actions the order changelist offers this user."""
    request = RequestFactory().get("/admin/orders/order/")
    request.user = user
    return set(admin.site._registry[Order].get_actions(request))


def add_import_url(endpoint: Endpoint) -> str:
    return f"/api/v1/endpoints/{endpoint.pk}/initial-imports/"


def cancel_api_url(record: InitialImport) -> str:
    return f"/api/v1/initial-imports/{record.pk}/cancel/"


def cancel_admin_url(record: InitialImport) -> str:
    return f"/admin/sync/initialimport/{record.pk}/cancel/"


# --- Support --------------------------------------------------------------------------------


def test_support_flags_through_the_api(support, endpoint):
    """Support POSTs an import for an endpoint: 201, and the orders are flagged."""
    response = api_for(support).post(add_import_url(endpoint), BODY, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["flagged"] == 2
    assert response.json()["requestedBy"] == "support"
    assert PendingOrder.objects.filter(endpoint=endpoint).count() == 2


def test_support_dry_run_through_the_api(support, endpoint):
    """Support may preview (dryRun) without flagging."""
    response = api_for(support).post(add_import_url(endpoint) + "?dryRun=true", BODY, format="json")
    assert response.status_code == 200
    assert response.json()["orders"] == 2
    assert not PendingOrder.objects.exists()


def test_support_flags_in_the_admin(support, endpoint):
    """Support opens the admin's flag page (200) and confirms an import there."""
    client = admin_for(support)
    assert client.get("/admin/sync/initialimport/add/").status_code == 200
    response = client.post(
        "/admin/sync/initialimport/add/",
        {
            "endpoint": str(endpoint.pk),
            "created_from_0": "2025-05-01",
            "created_from_1": "00:00:00",
            "created_to_0": "2025-05-02",
            "created_to_1": "00:00:00",
            "_confirm": "Confirm",
        },
    )
    assert response.status_code == 302
    assert InitialImport.objects.get().requested_by == support


def test_support_cancels_through_the_api(support, an_import):
    """Support cancels an import through the API: 200, and it is cancelled."""
    response = api_for(support).post(cancel_api_url(an_import))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "cancelled"
    assert not PendingOrder.objects.filter(initial_import=an_import).exists()


def test_support_cancels_with_the_admin_button(support, an_import):
    """Support sees the cancel button on the progress page and using it cancels the import."""
    client = admin_for(support)
    page = client.get(f"/admin/sync/initialimport/{an_import.pk}/change/")
    assert page.status_code == 200
    assert f'action="{cancel_admin_url(an_import)}"' in page.content.decode()
    assert client.get("/admin/sync/initialimport/").status_code == 200
    response = client.post(cancel_admin_url(an_import))
    assert response.status_code == 302
    an_import.refresh_from_db()
    assert an_import.status == InitialImport.Status.CANCELLED


def test_support_sees_and_uses_the_order_action(support, endpoint):
    """The order changelist offers support the flag action, and it flags the selection."""
    assert "flag_for_initial_import" in order_actions(support)
    client = admin_for(support)
    response = client.get("/admin/orders/order/")
    assert response.status_code == 200
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert "flag_for_initial_import" in choices
    order_id = Order.objects.order_by("pk").values_list("pk", flat=True).first()
    response = client.post(
        "/admin/orders/order/",
        {
            "action": "flag_for_initial_import",
            "_selected_action": [str(order_id)],
            "index": "0",
            "endpoint": str(endpoint.pk),
        },
    )
    assert response.status_code == 302
    assert list(PendingOrder.objects.values_list("order_id", flat=True)) == [order_id]


def test_support_cannot_change_endpoints_through_the_api(support, endpoint):
    """Support gets 403 on PATCH, run and rotate-secret, and the endpoint is unchanged."""
    client = api_for(support)
    secret = Endpoint.objects.get(pk=endpoint.pk).signing_secret_encrypted
    response = client.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"name": "X"}, format="json")
    assert response.status_code == 403
    assert client.post(f"/api/v1/endpoints/{endpoint.pk}/run/").status_code == 403
    assert client.post(f"/api/v1/endpoints/{endpoint.pk}/rotate-secret/").status_code == 403
    assert client.delete(f"/api/v1/endpoints/{endpoint.pk}/").status_code == 403
    fresh = Endpoint.objects.get(pk=endpoint.pk)
    assert (fresh.name, fresh.signing_secret_encrypted) == ("CRM", secret)
    # Reading is fine.
    assert client.get(f"/api/v1/endpoints/{endpoint.pk}/").status_code == 200


def test_support_may_replay_parked_orders(support, an_import, endpoint):
    """Support holds sync.change_pendingorder, so replay answers 200."""
    response = api_for(support).post(
        f"/api/v1/endpoints/{endpoint.pk}/parked/replay/", {}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"replayed": 0}


def test_support_cannot_change_endpoints_in_the_admin(support, endpoint):
    """Support may view an endpoint in the admin, but its change POST and buttons are 403."""
    client = admin_for(support)
    change = f"/admin/webhooks/endpoint/{endpoint.pk}/change/"
    assert client.get(change).status_code == 200
    assert client.post(change, {"name": "X", "url": endpoint.url}).status_code == 403
    for button in ("run", "rotate", "pause"):
        response = client.post(f"/admin/webhooks/endpoint/{endpoint.pk}/{button}/")
        assert response.status_code == 403, button
    fresh = Endpoint.objects.get(pk=endpoint.pk)
    assert (fresh.name, fresh.is_active) == ("CRM", True)


# --- Integrator -----------------------------------------------------------------------------


def test_integrator_cannot_flag_through_the_api(integrator, endpoint):
    """An integrator's import request (even a dry run) is 403 and flags nothing."""
    client = api_for(integrator)
    assert client.post(add_import_url(endpoint), BODY, format="json").status_code == 403
    response = client.post(add_import_url(endpoint) + "?dryRun=1", BODY, format="json")
    assert response.status_code == 403
    assert not InitialImport.objects.exists()
    assert not PendingOrder.objects.exists()


def test_integrator_cannot_flag_in_the_admin(integrator, endpoint):
    """The admin's flag page is 403 for an integrator, on GET and on a confirm POST."""
    client = admin_for(integrator)
    assert client.get("/admin/sync/initialimport/add/").status_code == 403
    response = client.post(
        "/admin/sync/initialimport/add/",
        {
            "endpoint": str(endpoint.pk),
            "created_from_0": "2025-05-01",
            "created_from_1": "00:00:00",
            "created_to_0": "2025-05-02",
            "created_to_1": "00:00:00",
            "_confirm": "Confirm",
        },
    )
    assert response.status_code == 403
    assert not InitialImport.objects.exists()


def test_integrator_has_no_order_action(integrator, endpoint):
    """The flag action is absent from an integrator's action choices (and the order
    changelist, which needs orders.view_order, is closed to them)."""
    assert "flag_for_initial_import" not in order_actions(integrator)
    client = admin_for(integrator)
    assert client.get("/admin/orders/order/").status_code == 403
    order_id = Order.objects.values_list("pk", flat=True).first()
    response = client.post(
        "/admin/orders/order/",
        {
            "action": "flag_for_initial_import",
            "_selected_action": [str(order_id)],
            "index": "0",
            "endpoint": str(endpoint.pk),
        },
    )
    assert response.status_code == 403
    assert not PendingOrder.objects.exists()


def test_order_viewer_without_import_permission_has_no_order_action(endpoint):
    """A staff user who may view orders but not add imports is not offered the action, and
    posting it anyway flags nothing."""
    viewer = user_with("viewer", ("orders.view_order",))
    client = admin_for(viewer)
    response = client.get("/admin/orders/order/")
    assert response.status_code == 200
    action_form = response.context["action_form"]
    choices = dict(action_form.fields["action"].choices) if action_form else {}
    assert "flag_for_initial_import" not in choices
    order_id = Order.objects.values_list("pk", flat=True).first()
    client.post(
        "/admin/orders/order/",
        {
            "action": "flag_for_initial_import",
            "_selected_action": [str(order_id)],
            "index": "0",
            "endpoint": str(endpoint.pk),
        },
    )
    assert not InitialImport.objects.exists()
    assert not PendingOrder.objects.exists()


def test_integrator_cannot_cancel(integrator, an_import):
    """An integrator's cancel is 403 in the API and in the admin; the import stays active."""
    assert api_for(integrator).post(cancel_api_url(an_import)).status_code == 403
    assert admin_for(integrator).post(cancel_admin_url(an_import)).status_code == 403
    an_import.refresh_from_db()
    assert an_import.status == InitialImport.Status.ACTIVE
    assert PendingOrder.objects.filter(initial_import=an_import).count() == 2


def test_integrator_changes_endpoints(integrator, endpoint):
    """An integrator PATCHes an endpoint (200) and may run it and rotate its secret."""
    client = api_for(integrator)
    response = client.patch(f"/api/v1/endpoints/{endpoint.pk}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.content
    assert Endpoint.objects.get(pk=endpoint.pk).name == "Renamed"
    assert client.post(f"/api/v1/endpoints/{endpoint.pk}/rotate-secret/").status_code == 200


def test_viewer_of_imports_without_change_has_no_cancel_button(an_import):
    """A staff user who may only view imports sees the progress page without the cancel
    button, and the cancel URL is 403 for them."""
    viewer = user_with("import-viewer", ("sync.view_initialimport",))
    client = admin_for(viewer)
    page = client.get(f"/admin/sync/initialimport/{an_import.pk}/change/")
    assert page.status_code == 200
    assert cancel_admin_url(an_import) not in page.content.decode()
    assert client.post(cancel_admin_url(an_import)).status_code == 403
    assert client.get("/admin/sync/initialimport/add/").status_code == 403


def test_integrator_cannot_open_the_progress_page(integrator, an_import):
    """Without sync.view_initialimport the admin progress page is 403."""
    client = admin_for(integrator)
    assert client.get(f"/admin/sync/initialimport/{an_import.pk}/change/").status_code == 403


# --- No permission and anonymous ------------------------------------------------------------


def test_no_permission_user_reads_nothing(nobody, an_import, endpoint):
    """A logged-in user with no permission (no role, or one taken away) reads nothing: 403."""
    client = api_for(nobody)
    for url in (
        "/api/v1/endpoints/",
        f"/api/v1/endpoints/{endpoint.pk}/",
        f"/api/v1/initial-imports/{an_import.pk}/",
        "/api/v1/initial-imports/",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "view_" in response.json()["detail"]


def test_no_permission_user_cannot_write(nobody, an_import, endpoint):
    """Every write is 403 for a user with no permission, and nothing changes."""
    client = api_for(nobody)
    pk = endpoint.pk
    writes = [
        ("post", "/api/v1/endpoints/", {"name": "New", "url": "http://127.0.0.1:9/y"}),
        ("patch", f"/api/v1/endpoints/{pk}/", {"name": "X"}),
        ("put", f"/api/v1/endpoints/{pk}/", {"name": "X", "url": "http://127.0.0.1:9/y"}),
        ("delete", f"/api/v1/endpoints/{pk}/", None),
        ("post", f"/api/v1/endpoints/{pk}/run/", None),
        ("post", f"/api/v1/endpoints/{pk}/rotate-secret/", None),
        ("post", f"/api/v1/endpoints/{pk}/parked/replay/", {}),
        ("post", add_import_url(endpoint), BODY),
        ("post", cancel_api_url(an_import), None),
    ]
    for method, url, body in writes:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
    assert Endpoint.objects.count() == 1
    assert Endpoint.objects.get().name == "CRM"
    assert InitialImport.objects.get().status == InitialImport.Status.ACTIVE
    assert PendingOrder.objects.count() == 2


def test_anonymous_gets_401(an_import, endpoint):
    """Without a token every read and write is 401 (with a WWW-Authenticate challenge)."""
    client = api_for(None)
    pk = endpoint.pk
    calls = [
        ("get", "/api/v1/endpoints/", None),
        ("get", f"/api/v1/endpoints/{pk}/", None),
        ("get", f"/api/v1/initial-imports/{an_import.pk}/", None),
        ("get", "/api/v1/initial-imports/", None),
        ("patch", f"/api/v1/endpoints/{pk}/", {"name": "X"}),
        ("post", f"/api/v1/endpoints/{pk}/run/", None),
        ("post", add_import_url(endpoint), BODY),
        ("post", cancel_api_url(an_import), None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["WWW-Authenticate"] == "Token", url
    assert InitialImport.objects.get().status == InitialImport.Status.ACTIVE


def test_bad_token_gets_401(an_import):
    """An unknown token is 401, not a read."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get(f"/api/v1/initial-imports/{an_import.pk}/").status_code == 401


def test_inactive_user_token_gets_401(support, an_import):
    """A deactivated support user's token no longer cancels."""
    client = api_for(support)
    User.objects.filter(pk=support.pk).update(is_active=False)
    assert client.post(cancel_api_url(an_import)).status_code == 401
