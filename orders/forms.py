"""Form fields that pick orders by S-360 values: shared by endpoint filters and imports."""

from __future__ import annotations

from django import forms

from .models import OrderState, OrderType


def order_types_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=OrderType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all order types.",
    )


def order_states_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=OrderState.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all states.",
    )


def sales_channels_field() -> forms.CharField:
    return forms.CharField(
        required=False, help_text="Comma-separated salesChannelCodes; empty: all channels."
    )


def codes(text: str) -> list[str]:
    """'WEB, BOX ,' -> ['WEB', 'BOX']."""
    return [code.strip() for code in text.split(",") if code.strip()]
