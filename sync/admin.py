from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config.admin_site import RefuseForbiddenActions
from orders.forms import codes, order_states_field, order_types_field, sales_channels_field
from webhooks.models import Endpoint

from . import imports, outbox
from .models import Delivery, InitialImport, PendingOrder, SyncRun


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = (
        "payload_id",
        "attempted_at",
        "order_count",
        "status_code",
        "ok",
        "duration_ms",
        "error",
    )
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EngineRecordAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    """What the sync engine writes (executions, deliveries, the outbox): read, never added or
    edited by hand. Parked orders have their own action, Replay."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(EngineRecordAdmin):
    list_display = (
        "id",
        "endpoint",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "orders_claimed",
        "orders_delivered",
        "orders_failed",
        "payloads",
        "note",
    )
    list_filter = ("status", "trigger", "endpoint")
    list_select_related = ("endpoint",)
    inlines = (DeliveryInline,)


@admin.register(Delivery)
class DeliveryAdmin(EngineRecordAdmin):
    list_display = (
        "payload_id",
        "endpoint",
        "run",
        "attempted_at",
        "order_count",
        "status_code",
        "ok",
        "duration_ms",
    )
    list_filter = ("ok", "endpoint")
    list_select_related = ("endpoint", "run")
    search_fields = ("=payload_id",)


class ParkedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("parked", "Parked"), ("pending", "Pending")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "parked":
            return queryset.filter(parked_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(parked_at__isnull=True)
        return queryset


@admin.register(PendingOrder)
class PendingOrderAdmin(EngineRecordAdmin):
    """The outbox: what each endpoint still owes the CRM; parked orders can be replayed."""

    list_display = (
        "order_id",
        "endpoint",
        "version",
        "reason",
        "attempts",
        "due_at",
        "parked_at",
        "last_error",
    )
    list_filter = (ParkedFilter, "endpoint", "reason")
    list_select_related = ("endpoint",)
    search_fields = ("order__order_id",)  # shows the box; see get_search_results
    search_help_text = "Exact orderId."
    actions = ("replay",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[PendingOrder], search_term: str
    ) -> tuple[QuerySet[PendingOrder], bool]:
        # Equality on the indexed order column, not the admin's case-insensitive text match.
        term = search_term.strip()
        if not term:
            return queryset, False
        if not term.isdigit() or int(term) >= 2**63:
            return queryset.none(), False
        return queryset.filter(order_id=int(term)), False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.change_pendingorder")

    @admin.action(
        description="Replay the selected parked orders (fresh retry budget)",
        permissions=["replay"],
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[PendingOrder]) -> None:
        count = outbox.outbox_replay(pending=queryset)
        messages.success(request, f"{count} parked orders will be sent at the next execution.")


class ImportForm(forms.Form):
    endpoint = forms.ModelChoiceField(queryset=Endpoint.objects.filter(is_active=True))
    created_from = forms.SplitDateTimeField(
        label="Created from",
        widget=admin_widgets.AdminSplitDateTime,
        help_text="Inclusive, UTC.",
    )
    created_to = forms.SplitDateTimeField(
        label="Created before",
        widget=admin_widgets.AdminSplitDateTime,
        help_text="Exclusive, UTC.",
    )
    order_types = order_types_field()
    order_states = order_states_field()
    sales_channels = sales_channels_field()

    def clean_sales_channels(self) -> list[str]:
        return codes(self.cleaned_data["sales_channels"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start >= end:
            self.add_error("created_to", "Must be after “created from”.")
        return data

    def timeframe(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "created_from": data["created_from"],
            "created_to": data["created_to"],
            "order_types": data["order_types"],
            "order_states": data["order_states"],
            "sales_channels": data["sales_channels"],
        }


@admin.register(InitialImport)
class InitialImportAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    """Support staff flag a timeframe for an endpoint (preview, then confirm) and watch it drain."""

    list_display = (
        "id",
        "endpoint",
        "description",
        "requested_by",
        "requested_at",
        "flagged",
        "progress_bar",
        "state",
    )
    list_filter = ("status", "endpoint")
    list_select_related = ("endpoint", "requested_by")
    change_form_template = "admin/sync/initialimport/progress.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return imports.imports_with_counts()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # nothing to edit; cancel has its own button and permission

    @admin.display(description="progress")
    def progress_bar(self, record: InitialImport) -> str:
        progress = imports.initial_import_progress(record, with_eta=False)
        return format_html(
            '<progress max="100" value="{}" style="width:10em"></progress> {}% '
            "<small>({} delivered, {} pending, {} parked)</small>",
            progress.percent,
            progress.percent,
            progress.delivered,
            progress.pending,
            progress.parked,
        )

    @admin.display(description="state")
    def state(self, record: InitialImport) -> str:
        return imports.initial_import_progress(record, with_eta=False).state

    def get_urls(self) -> list:
        return [
            path(
                "<int:pk>/cancel/",
                self.admin_site.admin_view(require_POST(self.cancel_view)),
                name="sync_initialimport_cancel",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None)
        estimate = None
        if request.method == "POST" and form.is_valid():
            endpoint = form.cleaned_data["endpoint"]
            if "_confirm" in request.POST:
                try:
                    record = imports.initial_import_create(
                        endpoint=endpoint, requested_by=request.user, **form.timeframe()
                    )
                except ValidationError as error:
                    for message in error.messages:
                        form.add_error(None, message)
                else:
                    messages.success(
                        request, f"{record.flagged} orders flagged for {endpoint.name}."
                    )
                    return HttpResponseRedirect(
                        reverse("admin:sync_initialimport_change", args=[record.pk])
                    )
            else:
                orders = imports.timeframe_orders(**form.timeframe())
                estimate = imports.initial_import_estimate(endpoint=endpoint, orders=orders)
                if not estimate.orders:
                    form.add_error(None, "No order was created in that timeframe: nothing to flag.")
                    estimate = None
        context = {
            **self.admin_site.each_context(request),
            "title": "Initial import: flag older orders for a CRM",
            "opts": self.model._meta,
            "form": form,
            "estimate": estimate,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/sync/initialimport/flag.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ):
        if not str(object_id).isdigit():
            raise Http404
        record = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": str(record),
            "opts": self.model._meta,
            "original": record,
            "progress": imports.initial_import_progress(record),
            "can_cancel": request.user.has_perm("sync.change_initialimport")
            and record.status == InitialImport.Status.ACTIVE,
        }
        return TemplateResponse(request, self.change_form_template, context)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        if not request.user.has_perm("sync.change_initialimport"):
            raise PermissionDenied
        record = get_object_or_404(InitialImport, pk=pk)
        removed = imports.initial_import_cancel(initial_import=record)
        messages.success(request, f"Cancelled: {removed} unsent orders removed from the outbox.")
        return HttpResponseRedirect(reverse("admin:sync_initialimport_change", args=[pk]))
