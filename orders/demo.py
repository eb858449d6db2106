"""Realistic S-360-like orders for the demo, the tests and the benchmarks.

Deterministic for a given seed: a theatre and a football club selling through a web shop, a box
office, a call centre and a resale platform, in CHF, EUR and GBP; mostly closed sales with
tickets plus charges, some refunds, reservations, options and abandoned baskets.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from .models import MovementType, OrderOriginator, OrderState, OrderType
from .services import MovementData, OperationData, OrderData

FIRST_ORDER_ID = 10_000_700_000
CHANNELS = [
    # code, name, originator, weight
    ("WEB", "Online ticket shop", OrderOriginator.TICKETSHOP, 55),
    ("BOX", "Box office", OrderOriginator.DESK, 20),
    ("CALL", "Call centre", OrderOriginator.SALE, 10),
    ("RESALE", "Fan resale platform", OrderOriginator.RESALE_PLATFORM, 8),
    ("PARTNER", "Partner reseller", OrderOriginator.EXTERNAL_SALE, 5),
    ("GROUPS", "Group bookings batch", OrderOriginator.BATCH, 2),
]
CURRENCIES = [("CHF", 2, "CHF", 60), ("EUR", 2, "€", 30), ("GBP", 2, "£", 10)]
PRODUCTS = [
    # product id, code, name, event id, base price in thousandths
    (10228231108335, "ASTDN", "Arena Suite Dining", 10228231100001, 120_000),
    (10228231108336, "TOSCA", "Tosca – Grand Théâtre", 10228231100002, 85_000),
    (10228231108337, "FCLEAGUE", "FC Servette – League match", 10228231100003, 35_000),
    (10228231108338, "NUTCR", "The Nutcracker", 10228231100004, 65_000),
    (10228231108339, "MUSEUM", "Museum day pass", 10228231100005, 20_000),
]
SEAT_CATEGORIES = [(501, "Category 1"), (502, "Category 2"), (503, "Category 3"), (504, "Standing")]
# order type, state, weight
KINDS = [
    (OrderType.SALE, OrderState.CLOSED, 70),
    (OrderType.SALE, OrderState.ABANDONED, 6),
    (OrderType.REFUND_CLIENT, OrderState.CLOSED, 5),
    (OrderType.REFUND_ORGANIZATION, OrderState.CLOSED, 1),
    (OrderType.EXCHANGE_CLIENT, OrderState.CLOSED, 2),
    (OrderType.RESERVATION, OrderState.RESERVED, 5),
    (OrderType.RESERVATION_FREEING, OrderState.CLOSED, 1),
    (OrderType.OPTION, OrderState.IN_OPTION, 3),
    (OrderType.OPTION_FREEING, OrderState.CLOSED, 1),
    (OrderType.RENEWAL, OrderState.CLOSED, 3),
    (OrderType.SALE, OrderState.CANCELLED, 2),
    (OrderType.ST_TRANSFER, OrderState.CLOSED, 1),
]
CHARGES_FEE = 3_000


def demo_orders(
    count: int,
    *,
    seed: int = 360,
    start_id: int = FIRST_ORDER_ID,
    ticket_lines: int | None = None,
    now: dt.datetime | None = None,
) -> Iterator[OrderData]:
    """Yield `count` orders created over the last 90 days before `now`.

    `ticket_lines` fixes the number of ticket operations (plus one CHARGES line each), as the
    benchmarks want; otherwise it varies from 1 to 4.
    """
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    channels = [c[:3] for c in CHANNELS]
    channel_weights = [c[3] for c in CHANNELS]
    currency_weights = [c[3] for c in CURRENCIES]
    kind_weights = [k[2] for k in KINDS]
    for n in range(count):
        order_id = start_id + n
        code, name, originator = rng.choices(channels, channel_weights)[0]
        currency, digits, symbol, _ = rng.choices(CURRENCIES, currency_weights)[0]
        order_type, state, _ = rng.choices(KINDS, kind_weights)[0]
        created = now - dt.timedelta(seconds=rng.randint(60, 90 * 86400))
        created = created.replace(microsecond=(created.microsecond // 1000) * 1000)
        sign = (
            -1
            if order_type
            in (
                OrderType.REFUND_CLIENT,
                OrderType.REFUND_ORGANIZATION,
                OrderType.RESERVATION_FREEING,
                OrderType.OPTION_FREEING,
            )
            else 1
        )
        lines = ticket_lines if ticket_lines is not None else rng.randint(1, 4)
        operations: list[OperationData] = []
        movements: list[MovementData] = []
        total = 0
        operation_id = order_id * 100
        for line in range(lines):
            product_id, product_code, product, event_id, base = rng.choice(PRODUCTS)
            category_id, category = rng.choice(SEAT_CATEGORIES)
            quantity = rng.choice((1, 2, 2, 2, 3, 4)) if ticket_lines is None else 2
            unit = base - rng.choice((0, 0, 0, 10_000))  # reduced prices
            amount = sign * quantity * unit
            total += amount
            operation_id += 1
            operations.append(
                {
                    "operation_id": operation_id,
                    "type": "SALE" if sign > 0 else "REFUND",
                    "kind": "SINGLE_ENTRY",
                    "quantity": quantity,
                    "base_price": base,
                    "unit_price": unit,
                    "total_amount": amount,
                    "product_id": product_id,
                    "product_code": product_code,
                    "product": product,
                    "event_id": event_id,
                    "performance_id": event_id * 10 + line,
                    "performance": f"{product}, {created:%d %b %Y}",
                    "seat_category_id": category_id,
                    "audience_sub_category_id": rng.choice((None, 7001, 7002)),
                    "parent_operation_id": None,
                }
            )
            numbered = category != "Standing"
            for seat in range(quantity if ticket_lines is None else 3):
                movements.append(
                    {
                        "movement_id": operation_id * 10 + seat,
                        "type": MovementType.SEAT if numbered else MovementType.AREA,
                        "seat_id": 900_000 + rng.randint(0, 99_999) if numbered else None,
                        "seat_category_id": category_id,
                        "seat_category": category,
                        "contingent_id": rng.choice((None, 3001)),
                        "area_id": None if numbered else 4001,
                    }
                )
            operation_id += 1
            operations.append(
                {
                    "operation_id": operation_id,
                    "type": "SALE" if sign > 0 else "REFUND",
                    "kind": "CHARGES",
                    "quantity": 1,
                    "base_price": CHARGES_FEE,
                    "unit_price": CHARGES_FEE,
                    "total_amount": sign * CHARGES_FEE,
                    "product_id": None,
                    "product_code": "FEE",
                    "product": "Booking fee",
                    "event_id": None,
                    "performance_id": None,
                    "performance": "",
                    "seat_category_id": None,
                    "audience_sub_category_id": None,
                    "parent_operation_id": operation_id - 1,
                }
            )
            total += sign * CHARGES_FEE
        anonymous = code == "BOX" and rng.random() < 0.3
        yield {
            "order_id": order_id,
            "order_secret_id": f"{rng.getrandbits(64):016X}",
            "order_state": state,
            "order_type": order_type,
            "order_originator": originator,
            "creation_date_time": created,
            "reference_date": created.replace(hour=0, minute=0, second=0, microsecond=0),
            "expiration_date": created + dt.timedelta(minutes=20)
            if state == OrderState.RESERVED
            else None,
            "contact_reference": "" if anonymous else f"{rng.randint(1, 9_999_999):010d}",
            "sales_channel_code": code,
            "sales_channel_name": name,
            "currency_code": currency,
            "currency_fraction_digit": digits,
            "currency_symbol": symbol,
            "sale_amount": total
            if order_type not in (OrderType.RESERVATION, OrderType.OPTION)
            else 0,
            "pre_sale_amount": 0,
            "reservation_amount": total if order_type == OrderType.RESERVATION else 0,
            "option_amount": total if order_type == OrderType.OPTION else 0,
            "waiting_account_balance_amount": 0,
            "last_mod_date_time": created + dt.timedelta(seconds=rng.randint(5, 900)),
            "operations": operations,
            "movements": movements,
        }


def demo_order_json(order: OrderData) -> dict:
    """Return the `orderDetailsData` JSON object of a demo order (what an API client sends)."""
    from .serializers import OrderSerializer

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    body = {}
    for name, field in OrderSerializer().fields.items():
        if field.read_only or name == "catalogCurrency":
            continue
        if name in ("operationDatas", "movementDatas"):
            child = field.child.fields
            body[name] = [
                {key: row[f.source] for key, f in child.items()}
                for row in order[field.source]  # type: ignore[literal-required]
            ]
            continue
        value = order.get(field.source)
        body[name] = iso(value) if isinstance(value, dt.datetime) else value
    body["catalogCurrency"] = {
        "currencyCode": order["currency_code"],
        "fractionDigit": order["currency_fraction_digit"],
        "symbol": order["currency_symbol"],
    }
    return body
