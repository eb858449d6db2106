"""REST API for reconciliations: /api/v1/reconciliations/… (design.md)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import CursorPages, ModelPermissions, require
from webhooks.models import Endpoint

from . import services
from .models import Difference, Reconciliation
from .report import report_download


class CreateSerializer(serializers.Serializer):
    crmFile = serializers.FileField(help_text="The CRM's flat-file export (CSV).")
    s360File = serializers.FileField(
        required=False, help_text="The S-360 export; omitted: generated from this database."
    )
    keyColumn = serializers.CharField(
        required=False, default="ORDER_ID", help_text="Key column(s), comma-separated."
    )
    columnMap = serializers.CharField(
        required=False, default="{}", help_text='JSON object: {"CRM column": "S-360 column"}.'
    )
    ignoreColumns = serializers.CharField(required=False, default="", help_text="Comma-separated.")
    caseInsensitiveColumns = serializers.CharField(required=False, default="")
    numericTolerance = serializers.FloatField(required=False, default=0.0, min_value=0.0)
    dateFormats = serializers.CharField(
        required=False,
        default="{}",
        help_text='JSON object: {"CREATION_DATE": "%d.%m.%Y %H:%M"}; ISO 8601 always works.',
    )

    def validate_dateFormats(self, value: str) -> dict[str, str]:
        return self.validate_columnMap(value)

    def validate_columnMap(self, value: str) -> dict[str, str]:
        try:
            mapping = json.loads(value or "{}")
        except json.JSONDecodeError as error:
            raise serializers.ValidationError(f"Not JSON: {error}.") from None
        if not isinstance(mapping, dict) or not all(
            _is_text(k) and _is_text(v) for k, v in mapping.items()
        ):
            raise serializers.ValidationError("A JSON object of CRM name to S-360 name.")
        return mapping


def _is_text(value: object) -> bool:
    """A string that UTF-8 and PostgreSQL can carry: JSON's "\\ud800" (a lone surrogate)
    would make the answer unencodable, and "\\u0000" cannot be stored (each was a 500)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class ReconciliationSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at")
    keyColumns = serializers.ListField(source="key_columns", child=serializers.CharField())
    columnMap = serializers.DictField(source="column_map", child=serializers.CharField())
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    s360Generated = serializers.SerializerMethodField()

    class Meta:
        model = Reconciliation
        fields = [
            "id",
            "createdAt",
            "status",
            "error",
            "summary",
            "keyColumns",
            "columnMap",
            "s360Generated",
            "startedAt",
            "finishedAt",
            "resynced",
        ]

    def get_s360Generated(self, record: Reconciliation) -> bool:
        return not record.s360_file


class DifferenceSerializer(serializers.ModelSerializer):
    s360Value = serializers.CharField(source="s360_value", allow_null=True)
    crmValue = serializers.CharField(source="crm_value", allow_null=True)

    class Meta:
        model = Difference
        fields = ["kind", "key", "column", "s360Value", "crmValue"]


class DifferencePagination(CursorPages):
    ordering = ("key", "id")


class DifferenceFilters(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Difference.Kind.choices, required=False)
    column = serializers.CharField(
        required=False, max_length=200, help_text="A column name, as in the S-360 file."
    )


class ReconciliationViewSet(viewsets.ReadOnlyModelViewSet):
    """Data consistency checks. Starting one and re-syncing need the reconciliation
    permissions (support staff); reading needs the view permission."""

    serializer_class = ReconciliationSerializer
    queryset = Reconciliation.objects.all()
    permission_classes = [ModelPermissions]
    parser_classes = [MultiPartParser, JSONParser]

    def get_permissions(self) -> list:
        if self.action == "create":
            return [require("reconciliation.add_reconciliation")()]
        if self.action == "resync":
            return [require("reconciliation.change_reconciliation", "sync.add_initialimport")()]
        return super().get_permissions()

    @extend_schema(
        request={"multipart/form-data": CreateSerializer}, responses={201: ReconciliationSerializer}
    )
    def create(self, request: Request) -> Response:
        form = CreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            record = services.reconciliation_create(
                crm_file=data["crmFile"],
                s360_file=data.get("s360File"),
                key_columns=_names(data["keyColumn"]),
                column_map=data["columnMap"],
                ignore_columns=_names(data["ignoreColumns"]),
                case_insensitive_columns=_names(data["caseInsensitiveColumns"]),
                numeric_tolerance=data["numericTolerance"],
                date_formats=data["dateFormats"],
                requested_by=request.user,
            )
        except services.UploadTooLarge as error:
            return Response({"detail": str(error)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(ReconciliationSerializer(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[DifferenceFilters], responses={200: DifferenceSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=DifferencePagination)
    def differences(self, request: Request, pk: str) -> Response:
        """Every difference, by key; filters `kind` and `column`."""
        record = self.get_object()
        filters = DifferenceFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)  # a NUL or 10 kB column name is a 400
        query = Difference.objects.filter(reconciliation=record)
        if kind := filters.validated_data.get("kind"):
            query = query.filter(kind=kind)
        if column := filters.validated_data.get("column"):
            query = query.filter(column=column)
        page = self.paginate_queryset(query)
        return self.get_paginated_response(DifferenceSerializer(page, many=True).data)

    # Routed explicitly in config/urls.py as …/report.csv: a file name, no trailing slash.
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def report(self, request: Request, pk: str) -> StreamingHttpResponse:
        """The differences as CSV; cells that would be spreadsheet formulas are neutralized."""
        record = self.get_object()
        return report_download(record)

    @extend_schema(
        request=inline_serializer("Resync", {"endpoint": serializers.IntegerField()}),
        responses={200: inline_serializer("Resynced", {"flagged": serializers.IntegerField()})},
    )
    @action(detail=True, methods=["post"])
    def resync(self, request: Request, pk: str) -> Response:
        """Send the differing orders that exist in S-360 to an endpoint again (RESYNC)."""
        record = self.get_object()
        endpoint_id = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if type(endpoint_id) is not int:
            raise ValidationError({"endpoint": ["An endpoint id (integer)."]})
        endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            raise ValidationError({"endpoint": [f"No endpoint {endpoint_id}."]})
        try:
            flagged = services.reconciliation_resync(reconciliation=record, endpoint=endpoint)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response({"flagged": flagged})
