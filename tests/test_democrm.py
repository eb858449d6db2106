"""The reference CRM receiver (/democrm/webhook/): Standard Webhooks verification, apply by
syncVersion (duplicates and stale versions ignored), fault knobs, bad input, and its export."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from standardwebhooks.webhooks import Webhook

from democrm.models import CrmOrder, Receiver
from orders.models import Order
from orders.services import order_upsert
from sync.payload import build_payload
from tests.factories import create_orders, order_data
from webhooks.models import new_signing_secret

WEBHOOK = "/democrm/webhook/"
EXPORT = "/democrm/export.csv"

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret() -> str:
    """The receiver's configured signing secret."""
    value = new_signing_secret()
    Receiver.objects.create(signing_secret=value)
    return value


def load(order_ids) -> list[Order]:
    return list(
        Order.objects.filter(order_id__in=order_ids)
        .prefetch_related("operations", "movements")
        .order_by("order_id")
    )


def body_for(orders: list[Order], reason: str = "CHANGE", level: str = "TICKETS") -> str:
    return build_payload(
        payload_id=f"msg_{uuid.uuid4().hex}",
        endpoint_id=1,
        run_id=7,
        sent_at=dt.datetime.now(dt.UTC),
        orders=[(order, reason) for order in orders],
        content_level=level,
    )


def signed_headers(secret: str, body: str, at: dt.datetime | None = None) -> dict[str, str]:
    at = at or dt.datetime.now(dt.UTC)
    msg_id = f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def deliver(client: Client, body: str, headers: dict[str, str]):
    return client.post(WEBHOOK, data=body, content_type="application/json", headers=headers)


def send(client: Client, secret: str, body: str):
    """POST a body signed with `secret`, as the sync engine does."""
    return deliver(client, body, signed_headers(secret, body))


# --- applying orders ------------------------------------------------------------------------


def test_signed_payload_of_two_orders_is_applied(client, secret):
    """A correctly signed payload of two orders applies both with S-360's values."""
    ids = [o["order_id"] for o in create_orders(2)]
    orders = load(ids)
    response = send(client, secret, body_for(orders))
    assert response.status_code == 200
    assert response.json() == {"applied": 2, "ignored": 0}
    assert CrmOrder.objects.count() == 2
    for order in orders:
        crm = CrmOrder.objects.get(s360_order_number=order.order_id)
        assert crm.sync_version == order.sync_version
        assert crm.status == order.order_state
        assert crm.order_kind == order.order_type
        assert crm.origin == order.order_originator
        assert crm.customer_number == order.contact_reference
        assert crm.channel == order.sales_channel_code
        assert crm.currency == order.currency_code
        assert crm.total == Decimal(order.sale_amount) / 1000
        assert crm.ordered_on == order.creation_date_time
        assert crm.modified_on == order.last_mod_date_time
        assert crm.line_count == order.operations.count()
        assert crm.seat_count == order.movements.count()
        assert crm.last_sync_reason == "CHANGE"


def test_operations_level_carries_no_seats(client, secret):
    """At the OPERATIONS content level no movements travel, so no seats are counted."""
    (data,) = create_orders(1)
    (order,) = load([data["order_id"]])
    assert send(client, secret, body_for([order], level="OPERATIONS")).status_code == 200
    crm = CrmOrder.objects.get(s360_order_number=order.order_id)
    assert crm.seat_count == 0
    assert crm.line_count == order.operations.count()


def test_same_payload_again_is_ignored(client, secret):
    """A duplicate delivery changes nothing: every order is ignored."""
    orders = load([o["order_id"] for o in create_orders(2)])
    body = body_for(orders)
    assert send(client, secret, body).json() == {"applied": 2, "ignored": 0}
    before = {c.s360_order_number: c.received_at for c in CrmOrder.objects.all()}
    response = send(client, secret, body)
    assert response.status_code == 200
    assert response.json() == {"applied": 0, "ignored": 2}
    assert {c.s360_order_number: c.received_at for c in CrmOrder.objects.all()} == before


def test_older_version_after_newer_is_ignored_and_newer_applies(client, secret):
    """Out-of-order deliveries: a newer version applies, an older one after it is ignored."""
    data = order_data()
    order_upsert(data=data)
    (v1,) = load([data["order_id"]])
    old_body = body_for([v1])
    order_upsert(data={**data, "order_state": "CANCELLED"})
    (v2,) = load([data["order_id"]])
    assert v2.sync_version == v1.sync_version + 1

    assert send(client, secret, body_for([v2])).json() == {"applied": 1, "ignored": 0}
    assert send(client, secret, old_body).json() == {"applied": 0, "ignored": 1}
    crm = CrmOrder.objects.get(s360_order_number=data["order_id"])
    assert crm.sync_version == v2.sync_version
    assert crm.status == "CANCELLED"


def test_newer_version_replaces_older(client, secret):
    """A newer version of a held order overwrites it."""
    data = order_data()
    order_upsert(data=data)
    (v1,) = load([data["order_id"]])
    assert send(client, secret, body_for([v1])).json() == {"applied": 1, "ignored": 0}
    order_upsert(data={**data, "order_state": "CANCELLED", "contact_reference": "C-NEW-1"})
    (v2,) = load([data["order_id"]])
    assert send(client, secret, body_for([v2], reason="RESYNC")).json() == {
        "applied": 1,
        "ignored": 0,
    }
    crm = CrmOrder.objects.get(s360_order_number=data["order_id"])
    assert (crm.sync_version, crm.status, crm.customer_number) == (
        v2.sync_version,
        "CANCELLED",
        "C-NEW-1",
    )
    assert crm.last_sync_reason == "RESYNC"
    assert CrmOrder.objects.count() == 1


def test_mixed_payload_counts_applied_and_ignored(client, secret):
    """In one payload, a held order at the same version is ignored and a new one applied."""
    first, second = create_orders(2)
    (held,) = load([first["order_id"]])
    send(client, secret, body_for([held]))
    response = send(client, secret, body_for(load([first["order_id"], second["order_id"]])))
    assert response.json() == {"applied": 1, "ignored": 1}


def test_empty_test_payload_is_accepted(client, secret):
    """The admin's test payload (no orders) is a 200 with nothing applied."""
    response = send(client, secret, body_for([]))
    assert response.status_code == 200
    assert response.json() == {"applied": 0, "ignored": 0}


# --- signature and configuration ------------------------------------------------------------


def test_wrong_secret_is_401(client, secret):
    """A payload signed with another secret is refused and nothing is applied."""
    body = body_for(load([o["order_id"] for o in create_orders(1)]))
    response = deliver(client, body, signed_headers(new_signing_secret(), body))
    assert response.status_code == 401
    assert "error" in response.json()
    assert not CrmOrder.objects.exists()


def test_tampered_body_is_401(client, secret):
    """A body changed after signing fails verification."""
    body = body_for(load([o["order_id"] for o in create_orders(1)]))
    headers = signed_headers(secret, body)
    response = deliver(client, body.replace('"syncVersion":1', '"syncVersion":99'), headers)
    assert response.status_code == 401
    assert not CrmOrder.objects.exists()


def test_stale_timestamp_is_401(client, secret):
    """A signature older than the tolerance (5 minutes) is refused: no replays."""
    body = body_for(load([o["order_id"] for o in create_orders(1)]))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    response = deliver(client, body, signed_headers(secret, body, at=old))
    assert response.status_code == 401
    assert not CrmOrder.objects.exists()


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_401(client, secret, missing):
    """Each of the three Standard Webhooks headers is required."""
    body = body_for([])
    headers = signed_headers(secret, body)
    del headers[missing]
    assert deliver(client, body, headers).status_code == 401


def test_no_headers_is_401(client, secret):
    """An unsigned POST is refused."""
    assert deliver(client, body_for([]), {}).status_code == 401


def test_malformed_signature_header_is_401(client, secret):
    """A signature header that is not `v1,<base64>` is a 401, not a server error."""
    body = body_for([])
    headers = {**signed_headers(secret, body), "webhook-signature": "garbage"}
    assert deliver(client, body, headers).status_code == 401


def test_no_secret_configured_is_503(client):
    """A receiver without a signing secret answers 503 (it cannot verify anything)."""
    Receiver.objects.create(signing_secret="")
    body = body_for([])
    response = deliver(client, body, signed_headers(new_signing_secret(), body))
    assert response.status_code == 503
    assert "error" in response.json()


def test_failure_rate_one_is_500(client, secret):
    """failure_rate=1.0 answers every verified delivery with 500 and applies nothing."""
    Receiver.objects.update(failure_rate=1.0)
    body = body_for(load([o["order_id"] for o in create_orders(1)]))
    response = send(client, secret, body)
    assert response.status_code == 500
    assert "error" in response.json()
    assert not CrmOrder.objects.exists()


def test_get_is_405(client, secret):
    """The webhook only takes POST."""
    assert client.get(WEBHOOK).status_code == 405


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"orders": [{}]},
        {"orders": [{"syncVersion": 1}]},
        {"orders": [{"orderDetailsData": {"orderId": 1}}]},
        {"orders": [{"orderDetailsData": {"orderId": 1}, "syncVersion": 1}]},
        {"orders": "not a list"},
        {"orders": [{"orderDetailsData": {"orderId": 1}, "syncVersion": "x"}]},
    ],
)
def test_signed_malformed_body_is_400(client, secret, payload):
    """A verified body that is not a valid orders.sync is a 400, and nothing is applied."""
    response = send(client, secret, json.dumps(payload))
    assert response.status_code == 400
    assert "error" in response.json()
    assert not CrmOrder.objects.exists()


def test_one_bad_order_applies_none(client, secret):
    """A payload with one malformed order applies none of its orders (all or nothing)."""
    (order,) = load([o["order_id"] for o in create_orders(1)])
    good = json.loads(body_for([order]))
    good["orders"].append({"syncVersion": 1, "orderDetailsData": {"orderId": 5}})
    response = send(client, secret, json.dumps(good))
    assert response.status_code == 400
    assert not CrmOrder.objects.exists()


def bad_amount_body() -> str:
    (order,) = load([o["order_id"] for o in create_orders(1)])
    body = json.loads(body_for([order]))
    body["orders"][0]["orderDetailsData"]["saleAmount"] = "forty"
    return json.dumps(body)


def test_signed_body_with_non_numeric_amount_is_400(client, secret):
    """A non-numeric saleAmount is bad input (400), not a server error."""
    client.raise_request_exception = False
    response = send(client, secret, bad_amount_body())
    assert response.status_code == 400


@pytest.mark.parametrize("body", ["not json at all", "[1, 2]"])
def test_signed_body_that_is_not_a_json_object_is_400(client, secret, body):
    """A verified body that is not a JSON object is bad input (400), not a server error."""
    client.raise_request_exception = False
    response = send(client, secret, body)
    assert response.status_code == 400


# --- export ---------------------------------------------------------------------------------


def test_export_needs_staff_login(client, user):
    """Anonymous users, and logged-in users who are not staff, are sent to the admin login."""
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(user)
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_export_needs_the_view_permission_of_crm_orders(client, db):
    """Staff without a role read nothing, the demo CRM's copy of every order included."""
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    assert client.get(EXPORT).status_code == 403


def test_export_lists_one_row_per_crm_order(admin_client_logged, secret):
    """The export has the CRM header and one `;` row per CrmOrder, by order number."""
    orders = load([o["order_id"] for o in create_orders(3)])
    send(admin_client_logged, secret, body_for(orders))
    response = admin_client_logged.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == (
        "S360 Order Number;Status;Kind;Origin;Customer Number;Channel;Currency;Total;"
        "Ordered On;Modified On;Sync Version"
    )
    assert len(lines) == 4
    rows = [line.split(";") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == [o.order_id for o in orders]
    for row, order in zip(rows, orders, strict=True):
        assert row[1] == order.order_state
        assert row[2] == order.order_type
        assert row[5] == order.sales_channel_code
        assert row[6] == order.currency_code
        assert Decimal(row[7]) == (Decimal(order.sale_amount) / 1000).quantize(Decimal("0.01"))
        assert dt.datetime.fromisoformat(row[8]) == order.creation_date_time
        assert dt.datetime.fromisoformat(row[9]) == order.last_mod_date_time
        assert int(row[10]) == order.sync_version


def test_export_with_no_orders_is_header_only(admin_client_logged):
    """An empty CRM exports just the header."""
    response = admin_client_logged.get(EXPORT)
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("S360 Order Number;Status;")
