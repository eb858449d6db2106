from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from config.admin_site import RefuseForbiddenActions
from webhooks.models import Endpoint

from . import services
from .models import Difference, Reconciliation
from .reading import UnreadableFile, preview_rows
from .report import report_download


class UploadForm(forms.Form):
    crm_file = forms.FileField(
        label="CRM export", help_text="CSV (`;`, `,` or tab; UTF-8 or Windows-1252)."
    )
    s360_file = forms.FileField(
        label="S-360 export",
        required=False,
        help_text="Leave empty to generate it from this database now.",
    )
    key_columns = forms.CharField(initial="ORDER_ID", help_text="Key column(s), comma-separated.")
    column_map = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON: {"CRM column": "S-360 column"}, e.g. {"Order number": "ORDER_ID"}.',
    )
    ignore_columns = forms.CharField(required=False, help_text="Columns to skip, comma-separated.")
    case_insensitive_columns = forms.CharField(required=False, help_text="Compared ignoring case.")
    numeric_tolerance = forms.FloatField(initial=0.0, min_value=0.0, help_text="For amounts.")
    date_formats = forms.CharField(
        required=False,
        help_text='JSON: {"CREATION_DATE": "%d.%m.%Y %H:%M"}; ISO 8601 is always understood.',
    )

    def clean_column_map(self) -> dict[str, str]:
        return self._json_names("column_map")

    def clean_date_formats(self) -> dict[str, str]:
        return self._json_names("date_formats")

    def _json_names(self, name: str) -> dict[str, str]:
        text = self.cleaned_data[name].strip() or "{}"
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValidationError(f"Not JSON: {error}.") from None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ValidationError("A JSON object of column names to text.")
        return mapping

    @staticmethod
    def _names(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "key_columns": self._names(data["key_columns"]),
            "column_map": data["column_map"],
            "ignore_columns": self._names(data["ignore_columns"]),
            "case_insensitive_columns": self._names(data["case_insensitive_columns"]),
            "numeric_tolerance": data["numeric_tolerance"],
            "date_formats": data["date_formats"],
        }


@admin.register(Reconciliation)
class ReconciliationAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    """Upload the CRM export (and optionally the S-360 one), read every difference, re-sync."""

    list_display = ("id", "created_at", "requested_by", "status", "headline", "resynced")
    list_filter = ("status",)
    list_select_related = ("requested_by",)

    @admin.display(description="summary")
    def headline(self, record: Reconciliation) -> str:
        if record.status == Reconciliation.Status.FAILED:
            return record.error[:120]
        s = record.summary or {}
        if not s:
            return "—"
        return (
            f"{s.get('matched', 0)} matched, {s.get('onlyInS360', 0)} only in S-360, "
            f"{s.get('onlyInCrm', 0)} only in CRM, {s.get('mismatched', 0)} differ"
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # results are read, not edited

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/report.csv", view(self.report_view), name="reconciliation_report"),
            path(
                "<int:pk>/resync/",
                view(require_POST(self.resync_view)),
                name="reconciliation_resync",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        previews: list[tuple[str, list[list[str]]]] = []
        if request.method == "POST" and form.is_valid():
            uploads = [("CRM", form.cleaned_data["crm_file"])]
            if form.cleaned_data["s360_file"]:
                uploads.append(("S-360", form.cleaned_data["s360_file"]))
            try:
                previews = [(name, preview_rows(upload, name=name)) for name, upload in uploads]
            except UnreadableFile as error:
                form.add_error(None, str(error))
            if not form.errors and "_compare" in request.POST:
                try:
                    record = services.reconciliation_create(
                        crm_file=form.cleaned_data["crm_file"],
                        s360_file=form.cleaned_data["s360_file"],
                        requested_by=request.user,
                        **form.settings(),
                    )
                except (services.UploadTooLarge, ValidationError) as error:
                    form.add_error(None, " ".join(getattr(error, "messages", [str(error)])))
                else:
                    messages.success(request, "The comparison is queued; this page follows it.")
                    return HttpResponseRedirect(
                        reverse("admin:reconciliation_reconciliation_change", args=[record.pk])
                    )
        context = {
            **self.admin_site.each_context(request),
            "title": "Data consistency check: compare a CRM export with S-360",
            "opts": self.model._meta,
            "form": form,
            "previews": previews,
        }
        return TemplateResponse(request, "admin/reconciliation/reconciliation/upload.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ):
        if not str(object_id).isdigit():
            raise Http404
        record = get_object_or_404(Reconciliation, pk=object_id)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        differences = Difference.objects.filter(reconciliation=record)
        kind, column = request.GET.get("kind", ""), request.GET.get("column", "")
        if kind:
            differences = differences.filter(kind=kind)
        if column:
            differences = differences.filter(column=column)
        page = Paginator(differences.order_by("key", "id"), 100).get_page(request.GET.get("p"))
        by_column = (
            Difference.objects.filter(reconciliation=record, kind=Difference.Kind.MISMATCH)
            .values("column")
            .annotate(n=Count("id"))
            .order_by("-n")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": str(record),
            "opts": self.model._meta,
            "original": record,
            "summary": record.summary,
            "page": page,
            "kinds": Difference.Kind.choices,
            "kind": kind,
            "column": column,
            "by_column": by_column,
            "endpoints": Endpoint.objects.filter(is_active=True),
            "can_resync": request.user.has_perms(
                ["reconciliation.change_reconciliation", "sync.add_initialimport"]
            ),
        }
        return TemplateResponse(
            request, "admin/reconciliation/reconciliation/results.html", context
        )

    def report_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        record = get_object_or_404(Reconciliation, pk=pk)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        return report_download(record)

    def resync_view(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        if not request.user.has_perms(
            ["reconciliation.change_reconciliation", "sync.add_initialimport"]
        ):
            raise PermissionDenied
        record = get_object_or_404(Reconciliation, pk=pk)
        endpoint = Endpoint.objects.filter(pk=request.POST.get("endpoint") or 0).first()
        back = HttpResponseRedirect(
            reverse("admin:reconciliation_reconciliation_change", args=[pk])
        )
        if endpoint is None:
            messages.error(request, "Choose an endpoint.")
            return back
        try:
            flagged = services.reconciliation_resync(reconciliation=record, endpoint=endpoint)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return back
        messages.success(request, f"{flagged} differing orders will be sent to {endpoint} again.")
        return back
