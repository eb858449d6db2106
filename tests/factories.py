"""Test data in one place: users, and S-360 orders built from the demo generator."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import factory
from django.contrib.auth.models import User

from orders.demo import demo_order_json, demo_orders
from orders.services import OrderData, orders_bulk_upsert

_ids = itertools.count(30_000_000_000, 1000)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


def order_data(**overrides: Any) -> OrderData:
    """One valid CLOSED SALE order (service shape) with a fresh orderId; keys may be overridden.

    Always a closed sale, so that a test changing its state or type really changes it.
    """
    order_id = next(_ids)
    for seed in itertools.count(order_id % 9973):
        (data,) = demo_orders(1, seed=seed, start_id=order_id)
        if (data["order_type"], data["order_state"]) == ("SALE", "CLOSED"):
            break
    data.update(overrides)  # type: ignore[typeddict-item]
    return data


def orders_data(count: int, **kwargs: Any) -> list[OrderData]:
    """`count` valid orders with consecutive fresh orderIds."""
    start = next(_ids)
    for _ in range(count // 1000):
        next(_ids)
    return list(demo_orders(count, start_id=start, **kwargs))


def order_json(**overrides: Any) -> dict[str, Any]:
    """One valid `orderDetailsData` request body; camelCase keys may be overridden."""
    body = demo_order_json(order_data())
    body.update(copy.deepcopy(overrides))
    return body


def create_orders(count: int, **kwargs: Any) -> list[OrderData]:
    """Store `count` orders through the service and return their data."""
    data = orders_data(count, **kwargs)
    orders_bulk_upsert(orders=data)
    return data


def endpoint_admin_form(**overrides: str) -> dict[str, str]:
    """What the endpoint admin's add form posts: a signature-only endpoint with no filters,
    S-360's defaults; fields may be overridden."""
    data = {
        "name": "Admin CRM",
        "url": "https://crm.example.com/admin-hook",
        "is_active": "on",
        "frequency_minutes": "15",
        "max_orders_per_run": "500",
        "orders_per_payload": "50",
        "content_level": "TICKETS",
        "filter_sales_channels": "",
        "max_attempts": "12",
        "auth_type": "NONE",
        "auth_username": "",
        "auth_secret": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data
