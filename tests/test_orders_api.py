"""REST API for orders: /api/v1/orders/ (design.md's table), including every bad input."""

import copy
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders.models import Operation, Order
from tests.factories import create_orders, order_json

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/orders/"
BULK = "/api/v1/orders/bulk/"


def post(api, url, body):
    return api.post(url, json.dumps(body), content_type="application/json")


def without_volatile(body: dict) -> dict:
    body = dict(body)
    body.pop("syncVersion", None)
    return body


def same_instant(a: str, b: str) -> bool:
    import datetime as dt

    return dt.datetime.fromisoformat(a.replace("Z", "+00:00")) == dt.datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


# --- authentication -------------------------------------------------------------------------


def test_requests_without_a_token_are_refused_with_401():
    response = APIClient().get(ORDERS)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_a_wrong_token_is_refused_with_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get(ORDERS)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_session_auth_works_for_logged_in_users(admin_client_logged):
    assert admin_client_logged.get(ORDERS).status_code == 200


# --- create, read, upsert, patch ------------------------------------------------------------


def test_create_then_read_back_the_same_order_details(api):
    body = order_json(contactReference="0001234567")
    response = post(api, ORDERS, body)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["syncVersion"] == 1
    read = api.get(f"{ORDERS}{body['orderId']}/").json()
    assert read == created
    for key in ("creationDateTime", "lastModDateTime", "referenceDate"):
        assert same_instant(read.pop(key), body.pop(key))
    read.pop("syncVersion")
    body.pop("expirationDate"), read.pop("expirationDate")
    assert read == body
    assert read["contactReference"] == "0001234567"


def test_create_accepts_the_s360_webhook_envelope(api):
    body = order_json()
    response = post(api, ORDERS, {"orderDetailsData": body})
    assert response.status_code == 201
    assert response.json()["orderId"] == body["orderId"]


def test_creating_an_existing_order_is_a_409_and_changes_nothing(api):
    body = order_json()
    post(api, ORDERS, body)
    response = post(api, ORDERS, {**body, "orderState": "CANCELLED"})
    assert response.status_code == 409
    assert "PUT" in response.json()["orderId"][0]
    assert Order.objects.get(order_id=body["orderId"]).order_state == body["orderState"]


def test_put_creates_then_replaces_idempotently(api):
    body = order_json()
    url = f"{ORDERS}{body['orderId']}/"
    assert api.put(url, body, format="json").status_code == 201
    again = api.put(url, body, format="json")
    assert again.status_code == 200
    assert again.json()["syncVersion"] == 1  # same content: no new version
    changed = api.put(url, {**body, "saleAmount": body["saleAmount"] + 1000}, format="json")
    assert changed.status_code == 200
    assert changed.json()["syncVersion"] == 2


def test_put_takes_the_order_id_from_the_url_and_refuses_a_different_one(api):
    body = order_json()
    url = f"{ORDERS}{body['orderId']}/"
    no_id = {k: v for k, v in body.items() if k != "orderId"}
    assert api.put(url, no_id, format="json").status_code == 201
    response = api.put(url, {**body, "orderId": body["orderId"] + 1}, format="json")
    assert response.status_code == 400
    assert "orderId" in response.json()


def test_patch_changes_only_the_given_keys_and_bumps_the_version(api):
    body = order_json()
    post(api, ORDERS, body)
    url = f"{ORDERS}{body['orderId']}/"
    response = api.patch(url, {"orderState": "CANCELLED"}, format="json")
    assert response.status_code == 200, response.json()
    patched = response.json()
    assert patched["orderState"] == "CANCELLED"
    assert patched["syncVersion"] == 2
    assert patched["operationDatas"] == body["operationDatas"]
    assert not same_instant(patched["lastModDateTime"], body["lastModDateTime"])


def test_patch_with_the_same_values_is_not_a_change(api):
    body = order_json()
    post(api, ORDERS, body)
    response = api.patch(
        f"{ORDERS}{body['orderId']}/", {"orderState": body["orderState"]}, format="json"
    )
    assert response.json()["syncVersion"] == 1


def test_patch_validates_the_merged_order(api):
    body = order_json()
    assert post(api, ORDERS, body).status_code == 201
    response = api.patch(
        f"{ORDERS}{body['orderId']}/", {"orderType": "SALE", "saleAmount": -5}, format="json"
    )
    assert response.status_code == 400
    assert "saleAmount" in response.json()


def test_unknown_order_is_a_json_404(api):
    for method in ("get", "patch"):
        response = getattr(api, method)(f"{ORDERS}123/")
        assert response.status_code == 404
        assert response.json()["detail"]
    assert api.get("/api/v1/nothing-here/").json() == {"detail": "Not found."}


# --- bad input ----------------------------------------------------------------------------


def test_malformed_json_is_a_400_that_says_so(api):
    response = api.post(ORDERS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"orderId": "abc"}, "orderId", "A valid integer is required."),
        ({"orderId": 0}, "orderId", "greater than or equal to 1"),
        ({"orderType": "GIFT"}, "orderType", '"GIFT" is not one of: SALE'),
        ({"orderState": "closed"}, "orderState", "is not one of"),
        ({"orderOriginator": None}, "orderOriginator", "may not be null"),
        ({"creationDateTime": "yesterday"}, "creationDateTime", "Datetime has wrong format"),
        ({"saleAmount": "forty"}, "saleAmount", "A valid integer is required."),
        ({"orderType": "SALE", "saleAmount": -40000}, "saleAmount", "zero or more for a SALE"),
        ({"contactReference": "12AB"}, "contactReference", "digits only"),
        ({"contactReference": "12\u0663"}, "contactReference", "digits only"),  # Arabic-Indic 3
        ({"salesChannelCode": ""}, "salesChannelCode", "may not be blank"),
        ({"orderID": 5}, "orderID", "Unknown field."),
        (
            {"catalogCurrency": {"currencyCode": "chf", "fractionDigit": 2}},
            "catalogCurrency",
            "ISO 4217",
        ),
        (
            {"catalogCurrency": {"currencyCode": "CHF", "fractionDigit": 9}},
            "catalogCurrency",
            "less than or equal to 3",
        ),
    ],
)
def test_invalid_fields_are_named_with_the_reason_and_nothing_is_written(
    api, change, field, message
):
    body = {**order_json(), **change}
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert message in str(errors[field]), errors
    assert not Order.objects.exists()


@pytest.mark.parametrize("missing", ["orderId", "orderType", "creationDateTime", "catalogCurrency"])
def test_missing_required_keys_are_named(api, missing):
    body = order_json()
    del body[missing]
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    assert response.json()[missing] == ["This field is required."]


def test_negative_quantity_and_prices_are_refused_in_operations(api):
    body = order_json()
    body["operationDatas"][0]["quantity"] = -1
    body["operationDatas"][1]["unitPrice"] = -3000
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    operations = response.json()["operationDatas"]  # errors keyed by the operation's index
    assert "greater than or equal to 0" in operations["0"]["quantity"][0]
    assert "greater than or equal to 0" in operations["1"]["unitPrice"][0]


def test_refunds_may_carry_negative_amounts(api):
    body = order_json(orderType="REFUND_CLIENT", saleAmount=-40000)
    for op in body["operationDatas"]:
        op["totalAmount"] = -abs(op["totalAmount"])
    response = post(api, ORDERS, body)
    assert response.status_code == 201, response.json()
    assert response.json()["saleAmount"] == -40000


def test_repeated_operation_ids_are_refused(api):
    body = order_json()
    body["operationDatas"].append(copy.deepcopy(body["operationDatas"][0]))
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    assert "unique" in response.json()["operationDatas"][0]  # a list-level message


def test_a_body_that_is_not_an_object_is_refused(api):
    response = post(api, ORDERS, [1, 2])
    assert response.status_code == 400


def test_movement_type_must_be_seat_or_area(api):
    body = order_json()
    body["movementDatas"][0]["type"] = "BOX"
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    assert "SEAT, AREA" in response.json()["movementDatas"]["0"]["type"][0]


def test_a_huge_order_id_is_a_400_not_a_500(api):
    response = post(api, ORDERS, order_json(orderId=2**70))
    assert response.status_code == 400
    assert api.get(f"{ORDERS}{2**70}/").status_code == 404


# --- list and filters ---------------------------------------------------------------------


def test_list_filters_by_state_type_contact_and_dates(api):
    orders = create_orders(40)
    closed = {o["order_id"] for o in orders if o["order_state"] == "CLOSED"}
    page = api.get(ORDERS, {"state": "CLOSED", "pageSize": 100}).json()
    assert {o["orderId"] for o in page["results"]} == closed

    refunds = {o["order_id"] for o in orders if o["order_type"] in ("REFUND_CLIENT", "SALE")}
    page = api.get(f"{ORDERS}?type=REFUND_CLIENT&type=SALE&pageSize=100").json()
    assert {o["orderId"] for o in page["results"]} == refunds

    contact = next(o["contact_reference"] for o in orders if o["contact_reference"])
    page = api.get(ORDERS, {"contactReference": contact}).json()
    assert {o["contactReference"] for o in page["results"]} == {contact}

    ordered = sorted(orders, key=lambda o: o["creation_date_time"])
    start, end = ordered[10]["creation_date_time"], ordered[20]["creation_date_time"]
    page = api.get(
        ORDERS, {"createdFrom": start.isoformat(), "createdTo": end.isoformat(), "pageSize": 100}
    ).json()
    assert {o["orderId"] for o in page["results"]} == {o["order_id"] for o in ordered[10:20]}

    newest = max(o["last_mod_date_time"] for o in orders)
    page = api.get(ORDERS, {"modifiedSince": newest.isoformat()}).json()
    assert [o["orderId"] for o in page["results"]] == [
        o["order_id"] for o in orders if o["last_mod_date_time"] == newest
    ]


def test_bad_filter_values_are_a_400_naming_the_filter(api):
    response = api.get(ORDERS, {"modifiedSince": "not-a-date", "state": "NOPE"})
    assert response.status_code == 400
    assert {"modifiedSince", "state"} <= set(response.json())


def test_list_pages_with_a_cursor_newest_first(api):
    orders = create_orders(25)
    seen = []
    url = f"{ORDERS}?pageSize=10"
    while url:
        page = api.get(url).json()
        seen += [o["orderId"] for o in page["results"]]
        url = page["next"]
    newest_first = sorted(
        orders, key=lambda o: (o["creation_date_time"], o["order_id"]), reverse=True
    )
    assert seen == [o["order_id"] for o in newest_first]


def test_list_query_count_does_not_grow_per_order(api):
    create_orders(5)
    with CaptureQueriesContext(connection) as few:
        api.get(ORDERS)
    create_orders(50)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(ORDERS).json()["results"]) == 55
    assert len(many) == len(few)


# --- bulk upsert --------------------------------------------------------------------------


def test_bulk_upsert_creates_updates_and_reports_each_order(api):
    first, second = order_json(), order_json()
    post(api, ORDERS, first)
    other_state = "CANCELLED" if first["orderState"] != "CANCELLED" else "CLOSED"
    response = post(api, BULK, [{**first, "orderState": other_state}, second])
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "orders": [
            {"orderId": first["orderId"], "syncVersion": 2, "result": "updated"},
            {"orderId": second["orderId"], "syncVersion": 1, "result": "created"},
        ],
    }


def test_bulk_accepts_an_orders_object_and_webhook_envelopes(api):
    response = post(api, BULK, {"orders": [{"orderDetailsData": order_json()}, order_json()]})
    assert response.status_code == 200
    assert response.json()["created"] == 2


def test_bulk_with_one_bad_order_names_it_by_index_and_writes_nothing(api):
    bodies = [order_json() for _ in range(5)]
    bodies[3]["orderType"] = "GIFT"
    bodies[4]["operationDatas"][0]["quantity"] = -2
    response = post(api, BULK, bodies)
    assert response.status_code == 400
    payload = response.json()
    assert "nothing written" in payload["detail"]
    assert [(e["index"], e["orderId"]) for e in payload["errors"]] == [
        (3, bodies[3]["orderId"]),
        (4, bodies[4]["orderId"]),
    ]
    assert "orderType" in payload["errors"][0]["errors"]
    assert "quantity" in payload["errors"][1]["errors"]["operationDatas"]["0"]
    assert not Order.objects.exists()
    assert not Operation.objects.exists()


def test_bulk_refuses_a_repeated_order_id(api):
    body = order_json()
    response = post(api, BULK, [body, order_json(), body])
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 2
    assert not Order.objects.exists()


def test_bulk_over_1000_orders_is_refused_before_validation(api):
    response = post(api, BULK, [{}] * 1001)
    assert response.status_code == 400
    assert "At most 1000" in response.json()["detail"]


@pytest.mark.parametrize("body", [[], {}, "text", {"orders": "x"}, [1, "a"]])
def test_bulk_refuses_bodies_that_are_not_a_list_of_orders(api, body):
    response = post(api, BULK, body)
    assert response.status_code == 400
    assert response.json()


def test_bulk_query_count_does_not_grow_per_order(api):
    def queries_for(count):
        bodies = [order_json() for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            assert post(api, BULK, bodies).status_code == 200
        return len(queries)

    assert queries_for(40) == queries_for(4)


def test_a_body_over_the_size_limit_is_a_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(api, BULK, [order_json() for _ in range(3)])
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


# --- schema and docs ----------------------------------------------------------------------


def test_openapi_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/orders/",
        "/api/v1/orders/{orderId}/",
        "/api/v1/orders/bulk/",
        "/api/v1/orders/export/",
    } <= set(paths)
    assert api.get("/api/docs/").status_code == 200


def test_the_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    schema = (tmp_path / "schema.yaml").read_text()
    for path in (
        "/api/v1/endpoints/{id}/initial-imports/",
        "/api/v1/initial-imports/{id}/",
        "/api/v1/runs/",
    ):
        assert path in schema


# --- found by fuzzing (tests/test_fuzz_orders.py, tests/test_schemathesis.py) ---------------


def test_a_lone_surrogate_echoed_in_an_error_is_a_400_not_a_500(api):
    """JSON may carry "\\ud800"; echoed in a message or as an unknown key, it made the error
    unencodable as UTF-8 (a 500)."""
    for body, field in (
        (order_json(orderState="\ud800"), "orderState"),
        ({**order_json(), "\udc00": 1}, "\ufffd"),
    ):
        response = api.post(ORDERS, json.dumps(body), content_type="application/json")
        assert response.status_code == 400
        assert field in response.json()
    bulk = api.post(
        BULK, json.dumps([order_json(orderType="\ud800")]), content_type="application/json"
    )
    assert bulk.status_code == 400
    assert "orderType" in bulk.json()["errors"][0]["errors"]


def test_a_signed_amount_below_the_64_bit_range_is_a_400(api):
    """Refunds may carry negative amounts, but not past what the database column holds."""
    body = order_json(orderType="REFUND_CLIENT", saleAmount=-(2**63) - 1)
    response = post(api, ORDERS, body)
    assert response.status_code == 400
    assert "saleAmount" in response.json()
    assert post(api, ORDERS, {**body, "saleAmount": -(2**63)}).status_code == 201


def test_the_served_schema_documents_the_error_answers(api):
    """Every operation documents its 4xx answers as JSON errors (401/403 everywhere, 400 where
    it takes input, 404 where it has a path id or a cursor)."""
    schema = api.get("/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403"} <= codes, (method, path)
            if "requestBody" in operation:
                assert "400" in codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
    single = schema["paths"]["/api/v1/orders/{orderId}/"]["get"]["responses"]["404"]
    assert single["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_an_error_is_json_even_where_csv_was_asked_for(api):
    response = api.get("/api/v1/reconciliations/0/report.csv?format=csv")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]
