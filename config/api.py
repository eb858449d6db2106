"""API-wide error shape: every error is JSON, with field-level messages for bad input."""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large: split it into smaller requests."}, status=413
        )
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = json_safe(response.data)
        # Errors are JSON even where CSV was negotiated (`?format=csv` on a download).
        response.content_type = "application/json"
    return response


def json_safe(data: Any) -> Any:
    """Error data with lone surrogates replaced by U+FFFD. JSON may carry "\\ud800", and an
    error that echoes the input (`"\\ud800" is not one of ...`, an unknown key) could not be
    encoded as UTF-8: the answer would be a 500 instead of the 400."""
    if isinstance(data, str):
        return data.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(data, dict):
        return {json_safe(key): json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(value) for value in data]
    return data


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Server error. It has been logged."}, status=500)
    return html_server_error(request)


def require(*perms: str) -> type:
    """A DRF permission class: authenticated, and holding every Django permission named."""
    from rest_framework.permissions import IsAuthenticated

    class HasPerms(IsAuthenticated):
        message = f"You need the permission(s): {', '.join(perms)}."

        def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
            return super().has_permission(request, view) and request.user.has_perms(perms)

    HasPerms.__name__ = f"Require({', '.join(perms)})"
    return HasPerms


class ModelPermissions(DjangoModelPermissions):
    """Django's model permissions, reading included: a GET needs the view permission, so a
    user without a role (or whose role was taken away) reads nothing, as in the admin."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if super().has_permission(request, view):
            return True
        model = self._queryset(view).model
        needed = self.get_required_permissions(request.method, model)
        self.message = f"You need the permission(s): {', '.join(needed)}."
        return False


class CursorPages(CursorPagination):
    """The API's pages: cursors (constant cost at any depth, no COUNT over millions of
    rows), `pageSize` up to 1000. Subclasses set `ordering`."""

    page_size = 100
    page_size_query_param = "pageSize"
    max_page_size = 1000


ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": (
        'An error: {"detail": "..."}, or for bad input the fields with their messages, '
        '{"orderType": ["..."]}; a bulk names each bad order by index.'
    ),
}


def document_errors(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular postprocessing hook: every operation documents the error answers it can
    give, so clients (and the schema-conformance tests) know 4xx bodies are JSON errors."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            where = {p["in"] for p in operation.get("parameters", [])}
            names = {p["name"] for p in operation.get("parameters", [])}
            codes = {
                "401": "Not authenticated: no or a wrong token.",
                "403": "Authenticated, but without the permission this needs.",
                "429": "Throttled: too many requests; retry later.",
            }
            if "requestBody" in operation or "query" in where:
                codes["400"] = "Bad input: each field named with its messages; nothing written."
            if "requestBody" in operation:
                codes["413"] = "Request body too large."
            # DRF answers a stale or forged pagination cursor, and an unknown `format`, with 404.
            if "path" in where or names & {"cursor", "format"}:
                codes["404"] = "Not found."
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": error})
            for code, response in responses.items():  # e.g. a 409 a view documents itself
                if code.startswith("4") and "content" not in response:
                    response["content"] = error
    return result
