"""Management commands: seed_demo (realistic demo orders) and export_orders (S-360 flat file)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from orders import services
from orders.models import Order, OrderState, OrderType
from orders.services import orders_bulk_upsert
from tests.factories import create_orders, order_data

pytestmark = pytest.mark.django_db

HEADER = (
    "ORDER_ID;ORDER_STATE;ORDER_TYPE;ORDER_ORIGINATOR;CONTACT_NUMBER;SALES_CHANNEL_CODE;"
    "CURRENCY;SALE_AMOUNT;CREATION_DATE;LAST_MOD_DATE;SYNC_VERSION"
)


def seed(count: int) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--orders", str(count), stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- seed_demo ---------------------------------------------------------------------------


def test_seed_demo_creates_varied_orders():
    """seed_demo --orders 300 stores 300 varied orders: channels, currencies, refunds,
    abandoned or cancelled baskets, multi-line orders."""
    output = seed(300)
    assert "Seeded 300 demo orders" in output
    orders = Order.objects.all()
    assert orders.count() == 300
    assert orders.values("sales_channel_code").distinct().count() >= 4
    assert orders.values("currency_code").distinct().count() >= 2
    refunds = orders.filter(order_type__in=[OrderType.REFUND_CLIENT, OrderType.REFUND_ORGANIZATION])
    assert refunds.filter(sale_amount__lt=0).exists()
    assert not refunds.filter(sale_amount__gt=0).exists()
    assert orders.filter(order_state__in=[OrderState.ABANDONED, OrderState.CANCELLED]).exists()
    multi = orders.annotate(n=Count("operations")).filter(n__gt=1)
    assert multi.exists()
    assert not orders.annotate(n=Count("operations")).filter(n=0).exists()
    assert set(orders.values_list("sync_version", flat=True)) == {1}


def test_seed_demo_hashes_match_stored_content():
    """Every seeded order's content_hash is the hash of its stored content."""
    seed(300)
    stale = [
        order.order_id
        for order in Order.objects.prefetch_related("operations", "movements")
        if order.content_hash != services.content_hash(services.order_data_from_instance(order))
    ]
    assert stale == []


def test_seed_demo_twice_adds_orders_without_editing():
    """A second seed_demo adds 300 new orders and leaves the first 300 untouched."""
    seed(300)
    first = dict(Order.objects.values_list("order_id", "content_hash"))
    first_mod = dict(Order.objects.values_list("order_id", "last_mod_date_time"))
    output = seed(300)
    assert "Seeded 300 demo orders" in output
    assert Order.objects.count() == 600
    again = Order.objects.filter(order_id__in=first)
    assert set(again.values_list("sync_version", flat=True)) == {1}
    assert dict(again.values_list("order_id", "content_hash")) == first
    assert dict(again.values_list("order_id", "last_mod_date_time")) == first_mod
    assert min(Order.objects.exclude(order_id__in=first).values_list("order_id", flat=True)) > max(
        first
    )


def test_seed_demo_continues_after_existing_orders():
    """seed_demo starts after the highest stored orderId, so it never overwrites an order."""
    (existing,) = create_orders(1)
    seed(5)
    assert Order.objects.count() == 6
    assert Order.objects.get(pk=existing["order_id"]).sync_version == 1
    assert (
        min(Order.objects.exclude(pk=existing["order_id"]).values_list("order_id", flat=True))
        == existing["order_id"] + 1
    )


def test_seed_demo_rejects_negative_count():
    """seed_demo --orders -1 exits non-zero with a message and stores nothing."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("seed_demo", "--orders", "-1", stdout=io.StringIO(), stderr=err)
    assert exc.value.code not in (0, None)
    assert "--orders" in err.getvalue()
    assert Order.objects.count() == 0


def test_seed_demo_zero_orders_stores_nothing():
    """seed_demo --orders 0 succeeds and stores nothing."""
    assert "Seeded 0 demo orders" in seed(0)
    assert Order.objects.count() == 0


# --- export_orders -----------------------------------------------------------------------


@pytest.fixture
def export_orders():
    """Three orders whose numeric and text orders of orderId differ, with telling values."""
    created = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    orders = [
        order_data(
            order_id=1_000_000,
            sale_amount=40000,
            currency_fraction_digit=2,
            contact_reference="0000012345",
            sales_channel_code="GENÈVE-CAISSE",
            creation_date_time=created,
            last_mod_date_time=created + dt.timedelta(minutes=5),
        ),
        order_data(order_id=999_999, sale_amount=-12345, currency_fraction_digit=2),
        order_data(order_id=20_000_000, sale_amount=40000, currency_fraction_digit=0),
    ]
    orders_bulk_upsert(orders=orders)
    return orders


def read_export(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_export_orders_writes_the_flat_file(tmp_path: Path, export_orders):
    """--out writes a UTF-8 ';' file: exact header, one row per order sorted by orderId,
    amounts as decimal text and contact numbers with their leading zeros."""
    out = tmp_path / "x.csv"
    call_command("export_orders", "--out", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    raw = out.read_bytes()
    assert "GENÈVE-CAISSE".encode() in raw
    text = raw.decode("utf-8")
    assert text.splitlines()[0] == HEADER
    header, *rows = read_export(text)
    assert [int(r[0]) for r in rows] == [999_999, 1_000_000, 20_000_000]
    by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in rows}
    row = by_id[1_000_000]
    stored = Order.objects.get(pk=1_000_000)
    assert row == {
        "ORDER_ID": "1000000",
        "ORDER_STATE": stored.order_state,
        "ORDER_TYPE": stored.order_type,
        "ORDER_ORIGINATOR": stored.order_originator,
        "CONTACT_NUMBER": "0000012345",
        "SALES_CHANNEL_CODE": "GENÈVE-CAISSE",
        "CURRENCY": stored.currency_code,
        "SALE_AMOUNT": "40.00",
        "CREATION_DATE": "2025-03-04T05:06:07+00:00",
        "LAST_MOD_DATE": "2025-03-04T05:11:07+00:00",
        "SYNC_VERSION": "1",
    }
    assert by_id[999_999]["SALE_AMOUNT"] == "-12.345"
    assert by_id[20_000_000]["SALE_AMOUNT"] == "40"


def test_export_orders_one_row_per_order(tmp_path: Path):
    """The export has exactly one row per stored order (more than one export block)."""
    create_orders(2100)
    out = tmp_path / "x.csv"
    err = io.StringIO()
    call_command("export_orders", "--out", str(out), stdout=io.StringIO(), stderr=err)
    _header, *rows = read_export(out.read_text(encoding="utf-8"))
    ids = [int(r[0]) for r in rows]
    assert len(ids) == 2100
    assert ids == sorted(Order.objects.values_list("order_id", flat=True))
    assert "Exported 2100 orders" in err.getvalue()


def test_export_orders_to_stdout(capsys, export_orders):
    """Without --out the flat file goes to standard output."""
    call_command("export_orders")
    text = capsys.readouterr().out
    assert text.splitlines()[0] == HEADER
    _header, *rows = read_export(text)
    assert [int(r[0]) for r in rows] == [999_999, 1_000_000, 20_000_000]


def test_export_orders_honours_call_command_stdout(export_orders):
    """call_command(stdout=...) receives the flat file, as for any Django command."""
    out = io.StringIO()
    call_command("export_orders", stdout=out)
    assert out.getvalue().startswith(HEADER + "\n"), repr(out.getvalue()[:200])
    assert len(read_export(out.getvalue())) == 1 + len(export_orders)


def test_export_orders_empty_database_writes_header_only(tmp_path: Path):
    """With no orders the export is the header row alone."""
    out = tmp_path / "x.csv"
    call_command("export_orders", "--out", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    assert out.read_text(encoding="utf-8") == HEADER + "\n"


def test_export_orders_into_missing_folder_fails(tmp_path: Path):
    """--out into a folder that does not exist raises CommandError and creates nothing."""
    target = tmp_path / "missing" / "x.csv"
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_orders", "--out", str(target))
    assert not target.parent.exists()
