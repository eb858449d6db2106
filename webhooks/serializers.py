from rest_framework import serializers

from orders.models import OrderState, OrderType

from .models import (
    MAX_FREQUENCY_MINUTES,
    MAX_ORDERS_PER_PAYLOAD,
    MAX_ORDERS_PER_RUN,
    AuthType,
    ContentLevel,
    Endpoint,
)


class EndpointSerializer(serializers.ModelSerializer):
    isActive = serializers.BooleanField(source="is_active", required=False)
    disabledReason = serializers.CharField(source="disabled_reason", read_only=True)
    frequencyMinutes = serializers.IntegerField(
        source="frequency_minutes", min_value=1, max_value=MAX_FREQUENCY_MINUTES, required=False
    )
    maxOrdersPerRun = serializers.IntegerField(
        source="max_orders_per_run", min_value=1, max_value=MAX_ORDERS_PER_RUN, required=False
    )
    ordersPerPayload = serializers.IntegerField(
        source="orders_per_payload", min_value=1, max_value=MAX_ORDERS_PER_PAYLOAD, required=False
    )
    contentLevel = serializers.ChoiceField(
        source="content_level", choices=ContentLevel.choices, required=False
    )
    filterOrderTypes = serializers.ListField(
        source="filter_order_types",
        child=serializers.ChoiceField(OrderType.choices),
        required=False,
    )
    filterOrderStates = serializers.ListField(
        source="filter_order_states",
        child=serializers.ChoiceField(OrderState.choices),
        required=False,
    )
    filterSalesChannels = serializers.ListField(
        source="filter_sales_channels",
        child=serializers.CharField(max_length=32),
        required=False,
    )
    maxAttempts = serializers.IntegerField(
        source="max_attempts", min_value=1, max_value=100, required=False
    )
    authType = serializers.ChoiceField(source="auth_type", choices=AuthType.choices, required=False)
    authUsername = serializers.CharField(
        source="auth_username",
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Basic: the user name; custom header: the header name.",
    )
    authSecret = serializers.CharField(
        source="auth_secret",
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Basic password, bearer token or header value. Write-only.",
    )
    pendingCount = serializers.IntegerField(source="pending_count", read_only=True)
    parkedCount = serializers.IntegerField(source="parked_count", read_only=True)
    lastRunAt = serializers.DateTimeField(source="last_run_at", read_only=True, allow_null=True)
    nextRunAt = serializers.DateTimeField(source="next_sync_at", read_only=True, allow_null=True)
    waitUntil = serializers.DateTimeField(
        source="waiting_until",
        read_only=True,
        allow_null=True,
        help_text="The CRM answered 429/503 with Retry-After: nothing is sent before this time "
        '(not even "run now"). Null when no such wait is ahead.',
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "name",
            "url",
            "isActive",
            "disabledReason",
            "frequencyMinutes",
            "maxOrdersPerRun",
            "ordersPerPayload",
            "contentLevel",
            "filterOrderTypes",
            "filterOrderStates",
            "filterSalesChannels",
            "maxAttempts",
            "authType",
            "authUsername",
            "authSecret",
            "pendingCount",
            "parkedCount",
            "lastRunAt",
            "nextRunAt",
            "waitUntil",
            "createdAt",
        ]

    def validate(self, attrs: dict) -> dict:
        auth_type = attrs.get("auth_type", getattr(self.instance, "auth_type", AuthType.NONE))
        username = attrs.get("auth_username", getattr(self.instance, "auth_username", ""))
        if auth_type in (AuthType.BASIC, AuthType.HEADER) and not username:
            raise serializers.ValidationError(
                {"authUsername": ["Required for Basic (user name) and custom header (its name)."]}
            )
        has_secret = attrs.get("auth_secret") or getattr(self.instance, "auth_secret_encrypted", "")
        if auth_type != AuthType.NONE and not has_secret:
            raise serializers.ValidationError({"authSecret": ["Required for this authType."]})
        return attrs


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_…). Shown this once only."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret. Shown this once only.")
