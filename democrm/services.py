"""What a CRM does with a delivery: apply each order unless it already holds a newer version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from .models import CrmOrder


@dataclass
class Applied:
    applied: int = 0
    ignored: int = 0


def crm_apply_payload(*, body: dict[str, Any]) -> Applied:
    """Upsert each order of an `orders.sync` payload by S-360 orderId.

    The documented rule: ignore a version lower than or equal to the one held. Deliveries may
    come twice or out of order; this makes both harmless.
    """
    result = Applied()
    entries = body.get("orders", [])
    ids = [e["orderDetailsData"]["orderId"] for e in entries]
    with transaction.atomic():
        held = dict(
            CrmOrder.objects.select_for_update()
            .filter(s360_order_number__in=ids)
            .values_list("s360_order_number", "sync_version")
        )
        for entry in entries:
            data = entry["orderDetailsData"]
            version = entry["syncVersion"]
            if held.get(data["orderId"], 0) >= version:
                result.ignored += 1
                continue
            CrmOrder.objects.update_or_create(
                s360_order_number=data["orderId"], defaults=_fields(data, entry)
            )
            held[data["orderId"]] = version
            result.applied += 1
    return result


def _fields(data: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "sync_version": entry["syncVersion"],
        "last_sync_reason": entry["syncReason"],
        "status": data["orderState"],
        "order_kind": data["orderType"],
        "origin": data["orderOriginator"],
        "customer_number": data.get("contactReference") or "",
        "channel": data["salesChannelCode"],
        "currency": data["catalogCurrency"]["currencyCode"],
        "total": Decimal(data["saleAmount"]) / 1000,
        "ordered_on": dt.datetime.fromisoformat(data["creationDateTime"]),
        "modified_on": dt.datetime.fromisoformat(data["lastModDateTime"]),
        "line_count": len(data.get("operationDatas", [])),
        "seat_count": len(data.get("movementDatas", [])),
    }
