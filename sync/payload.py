"""The wire contract: orders as S-360 `orderDetailsData`, wrapped in an `orders.sync` payload."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from orders.models import Order
from orders.serializers import MovementSerializer, OperationSerializer, OrderSerializer
from webhooks.models import ContentLevel

PAYLOAD_TYPE = "orders.sync"


def _keys(serializer: Any) -> list[tuple[str, str]]:
    """(S-360 key, model attribute) of the serializer's flat fields, in wire order."""
    return [
        (name, field.source)
        for name, field in serializer.fields.items()
        if not hasattr(field, "fields") and not hasattr(field, "child") and field.source != "*"
    ]


# Built once from the API serializer, so the payload and the API can never disagree on keys.
_ORDER_KEYS = [(k, s) for k, s in _keys(OrderSerializer()) if k != "syncVersion"]
_OPERATION_KEYS = _keys(OperationSerializer())
_MOVEMENT_KEYS = _keys(MovementSerializer())


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def order_details(order: Order, content_level: str) -> dict[str, Any]:
    """Return the `orderDetailsData` of an order (operations and movements prefetched).

    OPERATIONS leaves movements out; MOVEMENTS and TICKETS carry them (this back-office holds
    no ticket detail beyond the movements, so TICKETS sends what MOVEMENTS does).
    """
    data: dict[str, Any] = {key: _value(getattr(order, attr)) for key, attr in _ORDER_KEYS}
    data["catalogCurrency"] = {
        "currencyCode": order.currency_code,
        "fractionDigit": order.currency_fraction_digit,
        "symbol": order.currency_symbol,
    }
    data["operationDatas"] = [
        {key: getattr(op, attr) for key, attr in _OPERATION_KEYS} for op in order.operations.all()
    ]
    if content_level != ContentLevel.OPERATIONS:
        data["movementDatas"] = [
            {key: getattr(mv, attr) for key, attr in _MOVEMENT_KEYS} for mv in order.movements.all()
        ]
    return data


def build_payload(
    *,
    payload_id: str,
    endpoint_id: int,
    run_id: int | None,
    sent_at: dt.datetime,
    orders: Sequence[tuple[Order, str]],
    content_level: str,
) -> str:
    """Return the JSON body of one POST: the given (order, syncReason) pairs."""
    body = {
        "type": PAYLOAD_TYPE,
        "id": payload_id,
        "endpointId": endpoint_id,
        "runId": run_id,
        "sentAt": sent_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orders": [
            {
                "syncVersion": order.sync_version,
                "syncReason": reason,
                "orderDetailsData": order_details(order, content_level),
            }
            for order, reason in orders
        ],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
