"""The four roles (groups made by a migration), each against the actions it may and may not do."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory, order_json
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db
ROLES = import_module("sync.migrations.0004_roles")


@pytest.fixture(autouse=True)
def roles(db):
    """As `migrate` leaves them (made again: a reused test database may have lost them)."""
    ROLES.create_roles(apps, None)


def client_for(role: str) -> APIClient:
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def endpoint():
    return endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/h"})[0]


def attempts(client: APIClient, endpoint) -> dict[str, int]:
    """The status of each sensitive action for this client."""
    import io

    body = order_json()
    return {
        "read orders": client.get("/api/v1/orders/").status_code,
        "write an order": client.post("/api/v1/orders/", body, format="json").status_code,
        "edit an endpoint": client.patch(
            f"/api/v1/endpoints/{endpoint.pk}/", {"frequencyMinutes": 5}, format="json"
        ).status_code,
        "run an endpoint": client.post(f"/api/v1/endpoints/{endpoint.pk}/run/").status_code,
        "flag an import": client.post(
            f"/api/v1/endpoints/{endpoint.pk}/initial-imports/?dryRun=true",
            {"createdFrom": "2026-01-01", "createdTo": "2026-02-01"},
            format="json",
        ).status_code,
        "replay parked": client.post(
            f"/api/v1/endpoints/{endpoint.pk}/parked/replay/", {}, format="json"
        ).status_code,
        "start a reconciliation": client.post(
            "/api/v1/reconciliations/",
            {"crmFile": io.BytesIO(b"")},
            format="multipart",
        ).status_code,
        "read executions": client.get("/api/v1/runs/").status_code,
    }


ALLOWED = {200, 201, 202, 400}  # 400: allowed in, the (empty) input was refused


@pytest.mark.parametrize(
    "role, may",
    [
        ("Integrator", {"read orders", "edit an endpoint", "run an endpoint", "read executions"}),
        (
            "Support",
            {
                "read orders",
                "flag an import",
                "replay parked",
                "start a reconciliation",
                "read executions",
            },
        ),
        ("Read-only", {"read orders", "read executions"}),
        ("API client", {"read orders", "write an order", "read executions"}),
    ],
)
def test_each_role_may_do_its_job_and_nothing_else(role, may, endpoint, monkeypatch):
    import sync.tasks

    monkeypatch.setattr(sync.tasks.run_endpoint, "delay", lambda *a: None)
    results = attempts(client_for(role), endpoint)
    allowed = {action for action, code in results.items() if code in ALLOWED}
    assert allowed == may, results
    assert all(code == 403 for action, code in results.items() if action not in may), results


def test_the_roles_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Integrator",
        "Support",
        "Read-only",
        "API client",
    }


def test_roles_hold_in_the_admin(client, endpoint):
    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    assert client.get("/admin/sync/initialimport/add/").status_code == 200
    assert client.get("/admin/reconciliation/reconciliation/add/").status_code == 200
    change = client.post(f"/admin/webhooks/endpoint/{endpoint.pk}/change/", {"name": "x"})
    assert change.status_code == 403
    integrator = UserFactory(is_staff=True)
    integrator.groups.add(Group.objects.get(name="Integrator"))
    client.force_login(integrator)
    assert client.get("/admin/sync/initialimport/add/").status_code == 403
    assert client.get(f"/admin/webhooks/endpoint/{endpoint.pk}/change/").status_code == 200
