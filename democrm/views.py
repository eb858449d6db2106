"""The demo CRM's webhook and its flat-file export."""

from __future__ import annotations

import csv
import json
import random
import time

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .models import CrmOrder, Receiver
from .services import crm_apply_payload

EXPORT_COLUMNS = (
    "S360 Order Number",
    "Status",
    "Kind",
    "Origin",
    "Customer Number",
    "Channel",
    "Currency",
    "Total",
    "Ordered On",
    "Modified On",
    "Sync Version",
)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    receiver = Receiver.current()
    if receiver.latency_ms:
        time.sleep(receiver.latency_ms / 1000)
    if not receiver.signing_secret:
        return JsonResponse({"error": "The demo CRM has no signing secret configured."}, status=503)
    try:
        Webhook(receiver.signing_secret).verify(
            request.body, dict(request.headers), json_parse=False
        )
    except (WebhookVerificationError, ValueError) as error:  # a garbled header is a ValueError
        return JsonResponse({"error": f"Signature: {error}"}, status=401)
    if receiver.failure_rate and random.random() < receiver.failure_rate:
        return JsonResponse({"error": "Injected failure (demo fault knob)."}, status=500)
    try:
        body = json.loads(request.body)
        if not isinstance(body, dict):
            raise TypeError("the payload is not a JSON object")
        result = crm_apply_payload(body=body)
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        return JsonResponse({"error": f"Malformed payload: {error!r}"}, status=400)
    return JsonResponse({"applied": result.applied, "ignored": result.ignored})


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_member_required
@permission_required("democrm.view_crmorder", raise_exception=True)
@require_GET
def export(request: HttpRequest) -> StreamingHttpResponse:
    """The CRM side of a data consistency check: one row per order, CRM column names."""
    writer = csv.writer(_Echo(), delimiter=";", lineterminator="\n")
    rows = CrmOrder.objects.order_by("s360_order_number").values_list(
        "s360_order_number",
        "status",
        "order_kind",
        "origin",
        "customer_number",
        "channel",
        "currency",
        "total",
        "ordered_on",
        "modified_on",
        "sync_version",
    )

    def lines():
        yield writer.writerow(EXPORT_COLUMNS)
        for row in rows.iterator(chunk_size=5000):
            yield writer.writerow(
                [*row[:7], f"{row[7]:.2f}", row[8].isoformat(), row[9].isoformat(), row[10]]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="democrm-orders.csv"'
    return response
