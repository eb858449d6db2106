from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin

from config.admin_site import RefuseForbiddenActions
from orders.forms import codes, order_states_field, order_types_field, sales_channels_field
from sync import selectors
from sync import services as sync_services

from . import services
from .models import HEADER_VALUE, Endpoint
from .url_safety import UnsafeURL, check_url


class _Shown:
    """A secret for a template: renders as itself, but its repr (what a DEBUG log of a
    template's failed variable lookup prints, with the whole context) does not give it away."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<signing secret>"


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    filter_order_types = order_types_field()
    filter_order_states = order_states_field()
    filter_sales_channels = sales_channels_field()
    auth_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Auth secret",
        help_text="Password, token or header value. Blank keeps the stored one.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "name",
            "url",
            "is_active",
            "frequency_minutes",
            "max_orders_per_run",
            "orders_per_payload",
            "content_level",
            "filter_order_types",
            "filter_order_states",
            "filter_sales_channels",
            "max_attempts",
            "auth_type",
            "auth_username",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channels = self.initial.get("filter_sales_channels")
        if isinstance(channels, list):
            self.initial["filter_sales_channels"] = ", ".join(channels)

    def clean_filter_sales_channels(self) -> list[str]:
        return codes(self.cleaned_data["filter_sales_channels"])

    def clean_auth_secret(self) -> str:
        secret = self.cleaned_data["auth_secret"]
        if not HEADER_VALUE.fullmatch(secret):
            raise ValidationError("Printable ASCII only: it travels in an HTTP header.")
        return secret

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except UnsafeURL as error:
            raise ValidationError(str(error)) from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        auth_type = data.get("auth_type")
        if auth_type in ("BASIC", "HEADER") and not data.get("auth_username"):
            self.add_error("auth_username", "Required for Basic (user name) or custom header.")
        stored = self.instance.pk and self.instance.auth_secret_encrypted
        if auth_type and auth_type != "NONE" and not (data.get("auth_secret") or stored):
            self.add_error("auth_secret", "Required for this authentication.")
        return data


@admin.register(Endpoint)
class EndpointAdmin(RefuseForbiddenActions, SimpleHistoryAdmin):
    form = EndpointForm
    list_display = (
        "name",
        "url",
        "state",
        "frequency_minutes",
        "pending",
        "parked",
        "last_run_at",
        "next_sync_at",
    )
    list_filter = ("is_active", "content_level")
    search_fields = ("name", "url")
    readonly_fields = (
        "disabled_reason",
        "last_run_at",
        "next_sync_at",
        "waiting_until",
        "created_at",
    )
    change_form_template = "admin/webhooks/endpoint/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "url", "is_active", "disabled_reason")}),
        (
            "Schedule and batches",
            {
                "fields": (
                    "frequency_minutes",
                    "max_orders_per_run",
                    "orders_per_payload",
                    "max_attempts",
                    "last_run_at",
                    "next_sync_at",
                    "waiting_until",
                )
            },
        ),
        (
            "Content and filters",
            {
                "fields": (
                    "content_level",
                    "filter_order_types",
                    "filter_order_states",
                    "filter_sales_channels",
                )
            },
        ),
        (
            "Extra authentication (the payload is always signed)",
            {
                "fields": (
                    "auth_type",
                    "auth_username",
                    "auth_secret",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return selectors.endpoints_with_backlog()

    @admin.display(description="state")
    def state(self, endpoint: Endpoint) -> str:
        if endpoint.disabled_reason:
            return "disabled"
        if not endpoint.is_active:
            return "paused"
        return "waiting (Retry-After)" if endpoint.waiting_until else "active"

    @admin.display(description="waiting until (the CRM's Retry-After)")
    def waiting_until(self, endpoint: Endpoint) -> Any:
        return endpoint.waiting_until or "-"

    @admin.display(description="pending", ordering="pending_count")
    def pending(self, endpoint: Endpoint) -> int:
        return endpoint.pending_count  # type: ignore[attr-defined]

    @admin.display(description="parked", ordering="parked_count")
    def parked(self, endpoint: Endpoint) -> int:
        return endpoint.parked_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in EndpointForm.Meta.fields}
        data["auth_secret"] = form.cleaned_data.get("auth_secret") or ""
        if change:
            services.endpoint_update(endpoint=obj, data=data)
            return
        endpoint, secret = services.endpoint_create(data=data)
        obj.pk = endpoint.pk
        request.signing_secret_shown = secret  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: Endpoint, post_url_continue=None) -> Any:
        if secret := getattr(request, "signing_secret_shown", None):
            return self._secret_page(request, obj, secret, "Endpoint created")
        return super().response_add(request, obj, post_url_continue)

    def _secret_page(
        self, request: HttpRequest, endpoint: Endpoint, secret: str, headline: str
    ) -> TemplateResponse:
        """The one page that shows a signing secret: in the answer to the POST that made it,
        not in a message, which would travel in a cookie (or sit in the session) until the
        next page; never cached."""
        context = {
            **self.admin_site.each_context(request),
            "endpoint": endpoint,
            "secret": _Shown(secret),
            "subtitle": None,
            "headline": headline,
            "title": f"Signing secret of {endpoint.name}",
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/webhooks/endpoint/secret_shown.html", context)
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True)
        return response

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        # The outbox, executions, deliveries and imports of an endpoint are the sync engine's
        # records of it: they go with it (as with the API's DELETE), and nobody holds their
        # delete permissions, so the endpoint's own permission is what counts.
        return deleted, counts, set(), protected

    def get_urls(self) -> list:
        def view(action: str) -> Any:
            return self.admin_site.admin_view(require_POST(getattr(self, f"_{action}")))

        return [
            path("<int:pk>/run/", view("run"), name="webhooks_endpoint_run"),
            path("<int:pk>/test/", view("test"), name="webhooks_endpoint_test"),
            path("<int:pk>/pause/", view("pause"), name="webhooks_endpoint_pause"),
            path("<int:pk>/resume/", view("resume"), name="webhooks_endpoint_resume"),
            path("<int:pk>/rotate/", view("rotate"), name="webhooks_endpoint_rotate"),
            *super().get_urls(),
        ]

    def _endpoint(self, request: HttpRequest, pk: int) -> Endpoint:
        endpoint = get_object_or_404(Endpoint, pk=pk)
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        return endpoint

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:webhooks_endpoint_change", args=[pk]))

    def _run(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        endpoint = self._endpoint(request, pk)
        if not endpoint.is_active:
            messages.error(request, "The endpoint is paused or disabled: resume it first.")
        elif notice := endpoint.waiting_notice:
            messages.error(request, notice)
        else:
            sync_services.execution_request(endpoint=endpoint)
            messages.success(request, "An execution is queued; see Executions for its result.")
        return self._back(pk)

    def _test(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        endpoint = self._endpoint(request, pk)
        result = sync_services.endpoint_send_test(endpoint=endpoint)
        level = messages.SUCCESS if result.ok else messages.ERROR
        messages.add_message(
            request,
            level,
            f"Test payload: {result.status_code or 'no answer'} in {result.duration_ms} ms "
            f"{result.error} {result.excerpt[:200]}",
        )
        return self._back(pk)

    def _pause(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        services.endpoint_set_active(endpoint=self._endpoint(request, pk), active=False)
        messages.success(request, "Paused: changes keep queueing and go out on resume.")
        return self._back(pk)

    def _resume(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        services.endpoint_set_active(endpoint=self._endpoint(request, pk), active=True)
        messages.success(request, "Resumed.")
        return self._back(pk)

    def _rotate(self, request: HttpRequest, pk: int) -> TemplateResponse:
        endpoint = self._endpoint(request, pk)
        secret = services.endpoint_rotate_secret(endpoint=endpoint)
        return self._secret_page(request, endpoint, secret, "New signing secret")
