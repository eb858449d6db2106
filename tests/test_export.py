"""The S-360 flat-file export: GET /api/v1/orders/export/ (UTF-8, `;`, header, streamed)."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from orders.models import format_thousandths
from orders.services import order_upsert
from tests.factories import create_orders, order_data

pytestmark = pytest.mark.django_db
EXPORT = "/api/v1/orders/export/"
HEADER = (
    "ORDER_ID;ORDER_STATE;ORDER_TYPE;ORDER_ORIGINATOR;CONTACT_NUMBER;SALES_CHANNEL_CODE;"
    "CURRENCY;SALE_AMOUNT;CREATION_DATE;LAST_MOD_DATE;SYNC_VERSION"
)


def read_export(response) -> tuple[str, list[dict[str, str]]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8")
    return text.split("\n", 1)[0], list(csv.DictReader(io.StringIO(text), delimiter=";"))


def test_export_is_a_streamed_utf8_semicolon_file_with_the_s360_columns(api):
    orders = create_orders(12)
    response = api.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="s360-orders-')
    header, rows = read_export(response)
    assert header == HEADER
    assert [int(r["ORDER_ID"]) for r in rows] == sorted(o["order_id"] for o in orders)


def test_export_values_are_formatted_as_s360_does(api):
    data = order_data(
        contact_reference="0000420042",
        sale_amount=40000,
        currency_code="CHF",
        currency_fraction_digit=2,
        creation_date_time=dt.datetime(2026, 12, 3, 16, 0, tzinfo=dt.UTC),
        last_mod_date_time=dt.datetime(
            2026, 12, 3, 17, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=1))
        ),
    )
    order_upsert(data=data)
    order_upsert(data={**data, "order_state": "CANCELLED", "last_mod_date_time": None})
    _, (row,) = read_export(api.get(EXPORT))
    assert row["CONTACT_NUMBER"] == "0000420042"  # leading zeros survive
    assert row["SALE_AMOUNT"] == "40.00"
    assert row["CURRENCY"] == "CHF"
    assert row["ORDER_STATE"] == "CANCELLED"
    assert row["SYNC_VERSION"] == "2"
    assert row["CREATION_DATE"] == "2026-12-03T16:00:00+00:00"
    assert dt.datetime.fromisoformat(row["LAST_MOD_DATE"]) > data["creation_date_time"]


@pytest.mark.parametrize(
    "amount, digits, text",
    [
        (40000, 2, "40.00"),
        (40000, 0, "40"),
        (40500, 0, "40.5"),  # never hide sub-unit thousandths
        (1234567, 3, "1234.567"),
        (-299000, 2, "-299.00"),
        (5, 2, "0.005"),
        (0, 2, "0.00"),
    ],
)
def test_amounts_in_thousandths_become_exact_decimals(amount, digits, text):
    assert format_thousandths(amount, digits) == text


def test_export_takes_the_list_filters(api):
    orders = create_orders(20)
    _, rows = read_export(api.get(EXPORT, {"state": "CLOSED"}))
    assert {int(r["ORDER_ID"]) for r in rows} == {
        o["order_id"] for o in orders if o["order_state"] == "CLOSED"
    }


def test_export_query_count_does_not_grow_per_order(api):
    def queries_for_export() -> int:
        with CaptureQueriesContext(connection) as queries:
            read_export(api.get(EXPORT))
        return len(queries)

    create_orders(3)
    few = queries_for_export()
    create_orders(300)
    assert queries_for_export() == few


def test_export_needs_authentication(client):
    assert client.get(EXPORT).status_code == 401


def test_export_answers_an_accept_text_csv_client(api):
    create_orders(2)
    response = api.get(EXPORT, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    _, rows = read_export(response)
    assert len(rows) == 2
