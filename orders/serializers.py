"""The `orderDetailsData` wire shape: S-360's key names (camelCase), amounts in thousandths.

Validation turns a request body into `services.OrderData` (model field names); representation
turns an Order back into the same shape plus the read-only `syncVersion`.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from .models import (
    REVERSING_ORDER_TYPES,
    MovementType,
    OrderOriginator,
    OrderState,
    OrderType,
)

MAX_BULK_ORDERS = 1000
# S-360 ids are Java longs.
LONG_MAX = 2**63 - 1

_upper_token = RegexValidator(
    re.compile(r"^[A-Z][A-Z0-9_]*$"), "Use an upper-case S-360 code, e.g. SINGLE_ENTRY."
)
_digits = RegexValidator(re.compile(r"^[0-9]+$"), "A contact reference is digits only.")
_currency = RegexValidator(re.compile(r"^[A-Z]{3}$"), "Use an ISO 4217 currency code, e.g. CHF.")


def _id(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=LONG_MAX, **kwargs)


def _optional_id(source: str) -> serializers.IntegerField:
    return _id(source=source, required=False, allow_null=True, default=None)


def _text(source: str | None, max_length: int, **kwargs: Any) -> serializers.CharField:
    """An optional text field (blank by default); `source=None` when the names match."""
    if source is not None:
        kwargs["source"] = source
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    if not kwargs["required"]:
        kwargs.setdefault("default", "")
    return serializers.CharField(max_length=max_length, **kwargs)


def _amount(source: str, *, signed: bool = True, **kwargs: Any) -> serializers.IntegerField:
    kwargs.setdefault("required", False)
    if not kwargs["required"]:
        kwargs.setdefault("default", 0)
    return serializers.IntegerField(
        source=source,
        # Signed amounts still fit the database's 64-bit column.
        min_value=-LONG_MAX - 1 if signed else 0,
        max_value=LONG_MAX,
        help_text="Thousandths of the currency unit: 40000 is 40.00.",
        **kwargs,
    )


def _choice(source: str | None, choices: Any) -> serializers.ChoiceField:
    kwargs = {"source": source} if source else {}
    return serializers.ChoiceField(
        **kwargs,
        choices=choices.choices,
        error_messages={
            "invalid_choice": f'"{{input}}" is not one of: {", ".join(choices.values)}.'
        },
    )


class _StrictSerializer(serializers.Serializer):
    """Rejects keys it does not know, so a typo (`orderID`) is an error, not a silent drop."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields) - self._ignored_keys
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown field."] for key in sorted(unknown)}
                )
        return super().to_internal_value(data)

    _ignored_keys: frozenset[str] = frozenset()


class OperationSerializer(_StrictSerializer):
    operationId = _id(source="operation_id")
    type = _text(None, 32, validators=[_upper_token])
    kind = _text(None, 32, validators=[_upper_token])
    quantity = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    basePrice = _amount("base_price", signed=False)
    unitPrice = _amount("unit_price", signed=False)
    totalAmount = _amount("total_amount")
    productId = _optional_id("product_id")
    productCode = _text("product_code", 64)
    product = _text(None, 255)
    eventId = _optional_id("event_id")
    performanceId = _optional_id("performance_id")
    performance = _text(None, 255)
    seatCategoryId = _optional_id("seat_category_id")
    audienceSubCategoryId = _optional_id("audience_sub_category_id")
    parentOperationId = _optional_id("parent_operation_id")


class MovementSerializer(_StrictSerializer):
    movementId = _id(source="movement_id")
    type = _choice(None, MovementType)
    seatId = _optional_id("seat_id")
    seatCategoryId = _optional_id("seat_category_id")
    seatCategory = _text("seat_category", 128)
    contingentId = _optional_id("contingent_id")
    areaId = _optional_id("area_id")


class CatalogCurrencySerializer(_StrictSerializer):
    currencyCode = serializers.CharField(source="currency_code", validators=[_currency])
    fractionDigit = serializers.IntegerField(
        source="currency_fraction_digit", min_value=0, max_value=3
    )
    symbol = _text("currency_symbol", 8)


class OrderSerializer(_StrictSerializer):
    """One S-360 `orderDetailsData` object."""

    orderId = _id(source="order_id")
    orderSecretId = _text("order_secret_id", 64)
    orderState = _choice("order_state", OrderState)
    orderType = _choice("order_type", OrderType)
    orderOriginator = _choice("order_originator", OrderOriginator)
    creationDateTime = serializers.DateTimeField(source="creation_date_time")
    referenceDate = serializers.DateTimeField(
        source="reference_date", required=False, allow_null=True, default=None
    )
    expirationDate = serializers.DateTimeField(
        source="expiration_date", required=False, allow_null=True, default=None
    )
    contactReference = _text(
        "contact_reference",
        32,
        validators=[_digits],
        allow_null=True,
        help_text="The S-360 contact number, digits kept as text (leading zeros survive).",
    )
    salesChannelCode = _text("sales_channel_code", 32, required=True, allow_blank=False)
    salesChannelName = _text("sales_channel_name", 128)
    catalogCurrency = CatalogCurrencySerializer(source="*")
    saleAmount = _amount("sale_amount")
    preSaleAmount = _amount("pre_sale_amount")
    reservationAmount = _amount("reservation_amount")
    optionAmount = _amount("option_amount")
    waitingAccountBalanceAmount = _amount("waiting_account_balance_amount")
    lastModDateTime = serializers.DateTimeField(
        source="last_mod_date_time",
        required=False,
        allow_null=True,
        default=None,
        help_text="S-360's modification time; when omitted, the time the change is recorded.",
    )
    operationDatas = OperationSerializer(
        source="operations", many=True, required=False, default=list
    )
    movementDatas = MovementSerializer(source="movements", many=True, required=False, default=list)
    syncVersion = serializers.IntegerField(source="sync_version", read_only=True)

    _ignored_keys = frozenset({"syncVersion"})

    def validate_contactReference(self, value: str | None) -> str:
        return value or ""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if attrs["order_type"] not in REVERSING_ORDER_TYPES:
            amounts = {
                "saleAmount": "sale_amount",
                "preSaleAmount": "pre_sale_amount",
                "reservationAmount": "reservation_amount",
                "optionAmount": "option_amount",
                "waitingAccountBalanceAmount": "waiting_account_balance_amount",
            }
            for key, name in amounts.items():
                if attrs[name] < 0:
                    errors[key] = [
                        f"Must be zero or more for a {attrs['order_type']} order; "
                        "only refunds, exchanges and freeings carry negative amounts."
                    ]
            bad_lines = [i for i, op in enumerate(attrs["operations"]) if op["total_amount"] < 0]
            if bad_lines:
                errors["operationDatas"] = [
                    f"totalAmount must be zero or more for a {attrs['order_type']} order "
                    f"(operations at index {bad_lines})."
                ]
        for key, source, id_key, wire_key in (
            ("operationDatas", "operations", "operation_id", "operationId"),
            ("movementDatas", "movements", "movement_id", "movementId"),
        ):
            child_ids = [child[id_key] for child in attrs[source]]
            if len(child_ids) != len(set(child_ids)):
                errors.setdefault(key, []).append(f"Each {wire_key} must be unique.")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def unwrap_order_details(data: Any) -> Any:
    """Accept S-360's webhook envelope `{"orderDetailsData": {...}}` as well as the bare object."""
    if isinstance(data, dict) and set(data) == {"orderDetailsData"}:
        return data["orderDetailsData"]
    return data


class BulkUpsertSerializer(serializers.Serializer):
    """Request body of the bulk upsert: a JSON list of orders (or `{"orders": [...]}`)."""

    orders = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=MAX_BULK_ORDERS
    )


class UpsertOutcomeSerializer(serializers.Serializer):
    orderId = serializers.IntegerField()
    syncVersion = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class BulkUpsertResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    orders = UpsertOutcomeSerializer(many=True)
