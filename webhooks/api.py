"""REST API for endpoints: /api/v1/endpoints/… (design.md). Thin: validate, call a service."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import CursorPages, ModelPermissions, require
from orders.serializers import LONG_MAX
from sync import imports, outbox, selectors
from sync import services as sync_services
from sync.api import EstimateSerializer, ImportRequestSerializer, ImportSerializer

from . import services
from .models import Endpoint
from .serializers import EndpointCreatedSerializer, EndpointSerializer, SecretSerializer


def _api_errors(error: DjangoValidationError) -> ValidationError:
    """Model field names → wire names, so errors name the field the client sent."""
    wire = {f.source: name for name, f in EndpointSerializer().fields.items()}
    return ValidationError({wire.get(k, k): v for k, v in error.message_dict.items()})


class ParkedSerializer(serializers.Serializer):
    orderId = serializers.IntegerField(source="order_id")
    syncVersion = serializers.IntegerField(source="version")
    syncReason = serializers.CharField(source="reason")
    attempts = serializers.IntegerField()
    lastError = serializers.CharField(source="last_error")
    parkedAt = serializers.DateTimeField(source="parked_at")


class ParkedPagination(CursorPages):
    ordering = ("-parked_at", "-id")


class EndpointViewSet(viewsets.ModelViewSet):
    """CRM endpoints. Reading needs the view permission; changing them, the endpoint permissions
    (integrators); flagging an import or replaying parked orders, the support permissions."""

    serializer_class = EndpointSerializer
    pagination_class = None  # a handful of CRMs, not thousands
    permission_classes = [ModelPermissions]

    def get_queryset(self) -> Any:
        return selectors.endpoints_with_backlog().order_by("name", "id")

    def _read(self, endpoint: Endpoint, **extra: Any) -> dict:
        fresh = self.get_queryset().get(pk=endpoint.pk)
        fresh.secret = extra.get("secret")
        serializer = EndpointCreatedSerializer if "secret" in extra else EndpointSerializer
        return serializer(fresh).data

    @extend_schema(responses={201: EndpointCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint, secret = services.endpoint_create(data=serializer.validated_data)
        except DjangoValidationError as error:
            raise _api_errors(error) from None
        return Response(self._read(endpoint, secret=secret), status=status.HTTP_201_CREATED)

    def update(
        self, request: Request, *args: Any, partial: bool = False, **kwargs: Any
    ) -> Response:
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        try:
            services.endpoint_update(endpoint=endpoint, data=serializer.validated_data)
        except DjangoValidationError as error:
            raise _api_errors(error) from None
        return Response(self._read(endpoint))

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer("Queued", {"queued": serializers.BooleanField()}),
            409: OpenApiResponse(
                description="The endpoint is paused or disabled, or the CRM asked us to wait "
                "(Retry-After) until a time still ahead."
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[require("webhooks.change_endpoint")])
    def run(self, request: Request, pk: str) -> Response:
        """Queue one execution now (it is skipped if one is already running)."""
        endpoint = self.get_object()
        if not endpoint.is_active:
            return Response(
                {"detail": "The endpoint is paused or disabled: resume it first (isActive)."},
                status=status.HTTP_409_CONFLICT,
            )
        if notice := endpoint.waiting_notice:
            return Response({"detail": notice}, status=status.HTTP_409_CONFLICT)
        sync_services.execution_request(endpoint=endpoint)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: SecretSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="rotate-secret",
        permission_classes=[require("webhooks.change_endpoint")],
    )
    def rotate_secret(self, request: Request, pk: str) -> Response:
        """Replace the signing secret; the answer is the only time the new one is shown."""
        return Response({"secret": services.endpoint_rotate_secret(endpoint=self.get_object())})

    @extend_schema(responses={200: ParkedSerializer(many=True)})
    @action(
        detail=True,
        methods=["get"],
        pagination_class=ParkedPagination,
        permission_classes=[require("sync.view_pendingorder")],
    )
    def parked(self, request: Request, pk: str) -> Response:
        """Orders that used up their retry budget, newest first, with the last error."""
        endpoint = self.get_object()
        page = self.paginate_queryset(selectors.parked_orders(endpoint_id=endpoint.pk))
        return self.get_paginated_response(ParkedSerializer(page, many=True).data)

    @extend_schema(
        request=inline_serializer(
            "Replay",
            {"orderIds": serializers.ListField(child=serializers.IntegerField(), required=False)},
        ),
        responses={200: inline_serializer("Replayed", {"replayed": serializers.IntegerField()})},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="parked/replay",
        permission_classes=[require("sync.change_pendingorder")],
    )
    def replay(self, request: Request, pk: str) -> Response:
        """Send parked orders again at the next execution: all of them, or `orderIds`."""
        endpoint = self.get_object()
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": 'Send {"orderIds": [...]}, or {} to replay all.'})
        order_ids = request.data.get("orderIds")
        pending = selectors.parked_orders(endpoint_id=endpoint.pk)
        if order_ids is not None:
            # In range too: the database cannot even compare a number past a 64-bit id.
            if not isinstance(order_ids, list) or not all(
                type(i) is int and 1 <= i <= LONG_MAX for i in order_ids
            ):
                raise ValidationError({"orderIds": ["A list of integer orderIds."]})
            pending = pending.filter(order_id__in=order_ids)
        return Response({"replayed": outbox.outbox_replay(pending=pending)})

    @extend_schema(
        request=ImportRequestSerializer,
        responses={201: ImportSerializer, 200: EstimateSerializer},
        parameters=[
            OpenApiParameter("dryRun", bool, description="Only count and estimate; flag nothing.")
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="initial-imports",
        permission_classes=[require("sync.add_initialimport")],
    )
    def initial_imports(self, request: Request, pk: str) -> Response:
        """Flag every order created in [createdFrom, createdTo) for this endpoint."""
        endpoint = self.get_object()
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if request.query_params.get("dryRun", "").lower() in ("1", "true", "yes"):
            orders = imports.timeframe_orders(**data)
            estimate = imports.initial_import_estimate(endpoint=endpoint, orders=orders)
            return Response(EstimateSerializer(estimate).data)
        try:
            record = imports.initial_import_create(
                endpoint=endpoint, requested_by=request.user, **data
            )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(
            ImportSerializer(imports.imports_with_counts().get(pk=record.pk)).data,
            status=status.HTTP_201_CREATED,
        )
