"""REST API for executions: GET /api/v1/runs/?endpoint={id}."""

from __future__ import annotations

import django_filters
from rest_framework import serializers, viewsets
from rest_framework.pagination import CursorPagination

from . import selectors
from .models import Delivery, SyncRun


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


class RunFilter(django_filters.FilterSet):
    endpoint = django_filters.NumberFilter(field_name="endpoint_id")
    status = django_filters.CharFilter()

    class Meta:
        model = SyncRun
        fields: list[str] = []


class RunPagination(CursorPagination):
    ordering = ("-started_at", "-id")
    page_size = 50
    page_size_query_param = "pageSize"
    max_page_size = 500


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Executions, newest first, with their counts and deliveries."""

    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = RunPagination

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.runs_with_deliveries()
