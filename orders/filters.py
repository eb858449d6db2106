import django_filters

from .models import Order, OrderState, OrderType


class OrderFilter(django_filters.FilterSet):
    """The list filters of the API, named as on the wire."""

    state = django_filters.MultipleChoiceFilter(
        field_name="order_state", choices=OrderState.choices, help_text="orderState; repeatable."
    )
    type = django_filters.MultipleChoiceFilter(
        field_name="order_type", choices=OrderType.choices, help_text="orderType; repeatable."
    )
    modifiedSince = django_filters.IsoDateTimeFilter(
        field_name="last_mod_date_time",
        lookup_expr="gte",
        help_text="lastModDateTime at or after this instant (ISO 8601).",
    )
    createdFrom = django_filters.IsoDateTimeFilter(
        field_name="creation_date_time",
        lookup_expr="gte",
        help_text="creationDateTime at or after this instant (ISO 8601), inclusive.",
    )
    createdTo = django_filters.IsoDateTimeFilter(
        field_name="creation_date_time",
        lookup_expr="lt",
        help_text="creationDateTime before this instant (ISO 8601), exclusive.",
    )
    contactReference = django_filters.CharFilter(field_name="contact_reference")
    salesChannelCode = django_filters.CharFilter(field_name="sales_channel_code")

    class Meta:
        model = Order
        fields: list[str] = []
