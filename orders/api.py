"""REST API for orders: `/api/v1/orders/…` (design.md). Thin: validate, call a service, answer."""

from __future__ import annotations

import json
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import CursorPages, ModelPermissions, json_safe

from . import selectors, services
from .export import export_csv_blocks
from .filters import OrderFilter
from .models import Order
from .serializers import (
    MAX_BULK_ORDERS,
    BulkUpsertResponseSerializer,
    OrderSerializer,
    unwrap_order_details,
)


class OrderCursorPagination(CursorPages):
    ordering = ("-creation_date_time", "-order_id")


class CSVRenderer(BaseRenderer):
    """Lets `Accept: text/csv` through content negotiation; errors still render as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return json.dumps(data).encode()


class OrderViewSet(viewsets.GenericViewSet):
    """Orders in (add/change permissions: the API client role), read by any logged-in user."""

    serializer_class = OrderSerializer
    permission_classes = [ModelPermissions]  # reading needs orders.view_order too
    filterset_class = OrderFilter
    pagination_class = OrderCursorPagination
    lookup_field = "order_id"
    lookup_url_kwarg = "orderId"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> Any:
        return selectors.order_list()

    def _validated(self, data: Any, *, order_id: int | None = None) -> services.OrderData:
        data = unwrap_order_details(data)
        if not isinstance(data, dict):
            raise ValidationError({"detail": "Send one orderDetailsData JSON object."})
        if order_id is not None:
            if "orderId" in data and str(data["orderId"]) != str(order_id):
                raise ValidationError(
                    {"orderId": [f"Does not match the orderId in the URL ({order_id})."]}
                )
            data = {**data, "orderId": order_id}
        serializer = OrderSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _answer(self, order_id: int, code: int) -> Response:
        order = self.get_queryset().get(order_id=order_id)
        return Response(OrderSerializer(order).data, status=code)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrderSerializer(page, many=True).data)

    def retrieve(self, request: Request, orderId: str) -> Response:
        return Response(OrderSerializer(self.get_object()).data)

    @extend_schema(responses={201: OrderSerializer, 409: OpenApiResponse(description="Exists.")})
    def create(self, request: Request) -> Response:
        data = self._validated(request.data)
        order_id = data["order_id"]
        try:
            services.order_create(data=data)
        except services.OrderExists:
            return Response(
                {
                    "orderId": [
                        f"Order {order_id} exists; PUT /api/v1/orders/{order_id}/ replaces it."
                    ]
                },
                status=status.HTTP_409_CONFLICT,
            )
        return self._answer(order_id, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Idempotent upsert",
        responses={200: OrderSerializer, 201: OrderSerializer},
    )
    def update(self, request: Request, orderId: str) -> Response:
        data = self._validated(request.data, order_id=int(orderId))
        result = services.order_upsert(data=data)
        created = result.outcomes[data["order_id"]] == "created"
        return self._answer(
            data["order_id"], status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(summary="Partial update: the given keys replace the stored ones (lists whole)")
    def partial_update(self, request: Request, orderId: str) -> Response:
        patch = unwrap_order_details(request.data)
        if not isinstance(patch, dict):
            raise ValidationError({"detail": "Send a JSON object with the keys to change."})
        order = self.get_object()
        current = dict(OrderSerializer(order).data)
        current.pop("syncVersion")
        # A change without its own lastModDateTime is stamped now, not with the old time.
        current.pop("lastModDateTime")
        data = self._validated({**current, **patch}, order_id=order.order_id)
        services.order_upsert(data=data)
        return self._answer(order.order_id, status.HTTP_200_OK)

    @extend_schema(
        summary="Atomic bulk upsert of up to 1000 orders",
        request=OrderSerializer(many=True),
        responses={200: BulkUpsertResponseSerializer},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        items = request.data
        if isinstance(items, dict) and set(items) == {"orders"}:
            items = items["orders"]
        if not isinstance(items, list) or not items:
            raise ValidationError(
                {"detail": "Send a non-empty JSON list of orderDetailsData objects."}
            )
        if len(items) > MAX_BULK_ORDERS:
            raise ValidationError(
                {
                    "detail": f"At most {MAX_BULK_ORDERS} orders per request, got {len(items)}: "
                    "split the list. Nothing was written."
                }
            )
        items = [unwrap_order_details(item) for item in items]
        serializer = OrderSerializer(data=items, many=True)
        if not serializer.is_valid():
            by_index = serializer.errors  # {index: errors} in DRF 3.16+, a list before
            if isinstance(by_index, list):
                by_index = dict(enumerate(by_index))
            errors = [
                {"index": i, "orderId": _order_id_of(items[i]), "errors": e}
                for i, e in sorted(by_index.items())
                if e
            ]
            return Response(
                json_safe(
                    {
                        "detail": f"{len(errors)} of {len(items)} orders are invalid; "
                        "nothing written.",
                        "errors": errors,
                    }
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        orders = serializer.validated_data
        first_index: dict[int, int] = {}
        dupes = []
        for i, order in enumerate(orders):
            j = first_index.setdefault(order["order_id"], i)
            if j != i:
                dupes.append(
                    {
                        "index": i,
                        "orderId": order["order_id"],
                        "errors": {"orderId": [f"Same orderId as the order at index {j}."]},
                    }
                )
        if dupes:
            return Response(
                {
                    "detail": "Each orderId may appear once per request; nothing written.",
                    "errors": dupes,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        result = services.orders_bulk_upsert(orders=orders)
        return Response(
            {
                "created": result.count("created"),
                "updated": result.count("updated"),
                "unchanged": result.count("unchanged"),
                "orders": [
                    {
                        "orderId": order_id,
                        "syncVersion": result.versions[order_id],
                        "result": outcome,
                    }
                    for order_id, outcome in result.outcomes.items()
                ],
            }
        )

    @extend_schema(
        summary="S-360 flat-file export (CSV, UTF-8, `;`), streamed",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(
        detail=False,
        methods=["get"],
        renderer_classes=[JSONRenderer, CSVRenderer],
        pagination_class=None,
    )
    def export(self, request: Request) -> StreamingHttpResponse:
        orders = self.filter_queryset(Order.objects.all())
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(
            export_csv_blocks(selectors.order_export_rows(orders=orders)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="s360-orders-{stamp}.csv"'
        return response

    def get_object(self) -> Order:
        try:
            return self.get_queryset().get(order_id=int(self.kwargs["orderId"]))
        except (Order.DoesNotExist, ValueError, OverflowError):
            raise NotFound(f"No order {self.kwargs['orderId']}.") from None


def _order_id_of(item: Any) -> Any:
    return item.get("orderId") if isinstance(item, dict) else None
