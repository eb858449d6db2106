from django.contrib import admin

from config.admin_site import RefuseForbiddenActions

from .models import CrmOrder, Receiver


@admin.register(Receiver)
class ReceiverAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    list_display = ("__str__", "failure_rate", "latency_ms")


@admin.register(CrmOrder)
class CrmOrderAdmin(RefuseForbiddenActions, admin.ModelAdmin):
    list_display = (
        "s360_order_number",
        "sync_version",
        "status",
        "order_kind",
        "channel",
        "total",
        "currency",
        "last_sync_reason",
        "received_at",
    )
    list_filter = ("status", "order_kind", "channel", "last_sync_reason")
    search_fields = ("=s360_order_number", "=customer_number")
    show_full_result_count = False
