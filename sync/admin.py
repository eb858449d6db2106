from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import outbox
from .models import Delivery, PendingOrder, SyncRun


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


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
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
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
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
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
class PendingOrderAdmin(admin.ModelAdmin):
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
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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

    @admin.action(description="Replay the selected parked orders (fresh retry budget)")
    def replay(self, request: HttpRequest, queryset: QuerySet[PendingOrder]) -> None:
        count = outbox.outbox_replay(pending=queryset)
        messages.success(request, f"{count} parked orders will be sent at the next execution.")
