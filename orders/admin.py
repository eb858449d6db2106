from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from config.admin_site import RefuseForbiddenActions
from sync.imports import initial_import_flag_selection
from webhooks.models import Endpoint

from . import services
from .models import Movement, Operation, Order


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: an exact COUNT(*) over a million orders is a full scan on
    every changelist page. Past the cap the admin shows "10000" pages' worth and filters or
    search narrow it down."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        query = self.object_list
        if isinstance(query, QuerySet):
            return query.order_by()[: self.CAP].count()
        return len(query)


class ExactSplitDateTime(widgets.AdminSplitDateTime):
    """S-360 times carry milliseconds; a widget that drops them would turn an untouched Save
    into a change of content, and so a push of a new version to the CRM."""

    supports_microseconds = True

    def __init__(self, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.widgets[1].format = "%H:%M:%S.%f"


class OperationInline(admin.TabularInline):
    model = Operation
    extra = 0
    fields = (
        "operation_id",
        "type",
        "kind",
        "quantity",
        "base_price",
        "unit_price",
        "total_amount",
        "product_code",
        "product",
        "event_id",
        "performance_id",
        "seat_category_id",
        "parent_operation_id",
    )


class MovementInline(admin.TabularInline):
    model = Movement
    extra = 0
    fields = (
        "movement_id",
        "type",
        "seat_id",
        "seat_category_id",
        "seat_category",
        "contingent_id",
        "area_id",
    )


class SalesChannelFilter(admin.SimpleListFilter):
    """Channels as a short list, read from an index rather than from every order."""

    title = "sales channel"
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # A DISTINCT over every order costs ~170 ms at a million on PostgreSQL; channels are
        # few and rarely new, so the list is cached for a few minutes.
        codes = cache.get_or_set(
            "admin:order-sales-channels",
            lambda: list(
                Order.objects.order_by("sales_channel_code")
                .values_list("sales_channel_code", flat=True)
                .distinct()[:100]
            ),
            timeout=300,
        )
        return [(code, code) for code in codes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value():
            return queryset.filter(sales_channel_code=self.value())
        return queryset


@admin.register(Order)
class OrderAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    list_display = (
        "order_id",
        "order_state",
        "order_type",
        "sales_channel_code",
        "contact_reference",
        "sale",
        "creation_date_time",
        "last_mod_date_time",
        "sync_version",
    )
    list_filter = (
        "order_state",
        "order_type",
        SalesChannelFilter,
        "creation_date_time",
        "last_mod_date_time",
    )
    search_fields = ("order_id", "contact_reference")  # shows the box; see get_search_results
    search_help_text = "Exact orderId or contact number."
    formfield_overrides = {models.DateTimeField: {"widget": ExactSplitDateTime}}
    readonly_fields = ("sync_version", "last_mod_date_time", "content_hash")
    inlines = (OperationInline, MovementInline)
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ("flag_for_initial_import",)
    list_per_page = 100
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "order_id",
                    "order_secret_id",
                    "order_state",
                    "order_type",
                    "order_originator",
                )
            },
        ),
        (
            "Dates",
            {
                "fields": (
                    "creation_date_time",
                    "reference_date",
                    "expiration_date",
                    "last_mod_date_time",
                )
            },
        ),
        (
            "Customer and channel",
            {"fields": ("contact_reference", "sales_channel_code", "sales_channel_name")},
        ),
        (
            "Amounts (thousandths of the currency unit)",
            {
                "fields": (
                    ("currency_code", "currency_fraction_digit", "currency_symbol"),
                    "sale_amount",
                    "pre_sale_amount",
                    "reservation_amount",
                    "option_amount",
                    "waiting_account_balance_amount",
                )
            },
        ),
        ("Synchronization", {"fields": ("sync_version", "content_hash")}),
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        # Exact equality on the primary key and the contact index: the admin's own "=" search
        # is a case-insensitive match that no index serves, a full scan at a million orders.
        term = search_term.strip()
        if not term:
            return queryset, False
        if not term.isdigit():
            return queryset.none(), False
        # Two index lookups, then a primary-key list: an OR of the two conditions would let
        # the planner walk the whole creation-date index for the ORDER BY ... LIMIT instead.
        ids = list(
            Order.objects.filter(contact_reference=term).values_list("order_id", flat=True)[
                : CappedCountPaginator.CAP
            ]
        )
        if int(term) < 2**63:
            ids.append(int(term))
        return queryset.filter(order_id__in=ids), False

    def has_flag_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.add_initialimport")

    @admin.action(description="Flag for initial import to a CRM…", permissions=["flag"])
    def flag_for_initial_import(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> TemplateResponse | None:
        """An intermediate page picks the endpoint; then the selection is flagged."""
        endpoints = Endpoint.objects.filter(is_active=True)
        chosen = request.POST.get("endpoint")
        if chosen:
            endpoint = endpoints.filter(pk=chosen).first()
            if endpoint is None:
                self.message_user(request, "Choose an active endpoint.", messages.ERROR)
                return None
            try:
                record = initial_import_flag_selection(
                    endpoint=endpoint, orders=queryset, requested_by=request.user
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return None
            self.message_user(
                request,
                format_html(
                    '{} orders flagged for {}: <a href="{}">follow the import</a>.',
                    record.flagged,
                    endpoint.name,
                    reverse("admin:sync_initialimport_change", args=[record.pk]),
                ),
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Flag the selected orders for an initial import",
            "opts": self.model._meta,
            "endpoints": endpoints,
            "queryset": queryset,
            "count": queryset.count(),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/orders/order/flag_for_import.html", context)

    @admin.display(description="sale amount", ordering="sale_amount")
    def sale(self, order: Order) -> str:
        return f"{order.format_amount(order.sale_amount)} {order.currency_code}"

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> Any:
        # orderId is S-360's key: it is set on creation and never edited.
        return ("order_id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        if not change:
            # Placeholders until save_related has the operations and movements to hash.
            obj.content_hash = ""
            obj.last_mod_date_time = obj.creation_date_time
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The edit went to the tables directly; the service decides whether it is a change
        # (new version) or an identical re-save (nothing to push).
        services.order_record_admin_change(order_id=form.instance.order_id)
