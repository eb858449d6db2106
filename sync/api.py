"""REST API for executions: GET /api/v1/runs/?endpoint={id}."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import CursorPages, ModelPermissions, require
from orders.models import OrderState, OrderType
from orders.serializers import LONG_MAX

from . import imports, selectors
from .models import Delivery, InitialImport, SyncRun


class DeliverySerializer(serializers.ModelSerializer):
    payloadId = serializers.CharField(source="payload_id")
    orderIds = serializers.ListField(source="order_ids", child=serializers.IntegerField())
    syncVersions = serializers.ListField(source="versions", child=serializers.IntegerField())
    attemptedAt = serializers.DateTimeField(source="attempted_at")
    durationMs = serializers.IntegerField(source="duration_ms")
    statusCode = serializers.IntegerField(source="status_code", allow_null=True)
    responseExcerpt = serializers.CharField(source="response_excerpt")

    class Meta:
        model = Delivery
        fields = [
            "payloadId",
            "orderIds",
            "syncVersions",
            "attemptedAt",
            "durationMs",
            "statusCode",
            "ok",
            "error",
            "responseExcerpt",
        ]


class RunSerializer(serializers.ModelSerializer):
    endpoint = serializers.IntegerField(source="endpoint_id")
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    ordersClaimed = serializers.IntegerField(source="orders_claimed")
    ordersDelivered = serializers.IntegerField(source="orders_delivered")
    ordersFailed = serializers.IntegerField(source="orders_failed")
    deliveries = DeliverySerializer(many=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "endpoint",
            "trigger",
            "status",
            "startedAt",
            "finishedAt",
            "ordersClaimed",
            "ordersDelivered",
            "ordersFailed",
            "payloads",
            "note",
            "deliveries",
        ]


class IdFilter(django_filters.NumberFilter):
    """A row id: an integer in the database's range (a float or a 300-digit number is a 400)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, min_value=1, max_value=LONG_MAX, **kwargs)


class RunFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id")
    status = django_filters.CharFilter()

    class Meta:
        model = SyncRun
        fields: list[str] = []


class RunPagination(CursorPages):
    page_size = 50
    max_page_size = 500
    ordering = ("-started_at", "-id")


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Executions, newest first, with their counts and deliveries."""

    serializer_class = RunSerializer
    permission_classes = [ModelPermissions]
    filterset_class = RunFilter
    pagination_class = RunPagination

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.runs_with_deliveries()


class ImportRequestSerializer(serializers.Serializer):
    """Dates (`2026-01-01`, midnight UTC) or datetimes with offset; half-open [from, to)."""

    createdFrom = serializers.DateTimeField(source="created_from")
    createdTo = serializers.DateTimeField(source="created_to")
    filterOrderTypes = serializers.ListField(
        source="order_types", child=serializers.ChoiceField(OrderType.choices), required=False
    )
    filterOrderStates = serializers.ListField(
        source="order_states", child=serializers.ChoiceField(OrderState.choices), required=False
    )
    filterSalesChannels = serializers.ListField(
        source="sales_channels", child=serializers.CharField(max_length=32), required=False
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["created_from"] >= attrs["created_to"]:
            raise serializers.ValidationError({"createdTo": ["Must be after createdFrom."]})
        return attrs


class EstimateSerializer(serializers.Serializer):
    orders = serializers.IntegerField(help_text="Orders the import would flag.")
    backlog = serializers.IntegerField(help_text="Orders the endpoint has pending already.")
    executions = serializers.IntegerField()
    eta = serializers.DateTimeField(allow_null=True)


class ImportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint = serializers.IntegerField(source="endpoint_id")
    requestedBy = serializers.CharField(source="requested_by", allow_null=True)
    requestedAt = serializers.DateTimeField(source="requested_at")
    createdFrom = serializers.DateTimeField(source="created_from", allow_null=True)
    createdTo = serializers.DateTimeField(source="created_to", allow_null=True)
    description = serializers.CharField()
    flagged = serializers.IntegerField()
    queued = serializers.IntegerField()
    delivered = serializers.IntegerField(source="progress.delivered")
    pending = serializers.IntegerField(source="progress.pending")
    parked = serializers.IntegerField(source="progress.parked")
    removed = serializers.IntegerField()
    percent = serializers.IntegerField(source="progress.percent")
    state = serializers.CharField(
        source="progress.state", help_text="in progress, done, done, some parked, or cancelled"
    )
    eta = serializers.DateTimeField(source="progress.eta", allow_null=True)

    def to_representation(self, instance: InitialImport) -> dict:
        instance.progress = imports.initial_import_progress(instance)  # type: ignore[attr-defined]
        return super().to_representation(instance)


class ImportFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id")

    class Meta:
        model = InitialImport
        fields: list[str] = []


class ImportViewSet(viewsets.ReadOnlyModelViewSet):
    """Initial imports with their progress; support staff may cancel them."""

    serializer_class = ImportSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ImportFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return imports.imports_with_counts()

    @extend_schema(request=None, responses={200: ImportSerializer})
    @action(
        detail=True, methods=["post"], permission_classes=[require("sync.change_initialimport")]
    )
    def cancel(self, request: Request, pk: str) -> Response:
        """Remove what the import queued and has not sent; what was sent stays sent."""
        record = self.get_object()
        imports.initial_import_cancel(initial_import=record)
        return Response(
            ImportSerializer(self.get_queryset().get(pk=record.pk)).data, status=status.HTTP_200_OK
        )
