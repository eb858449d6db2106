"""API-wide error shape: every error is JSON, with field-level messages for bad input."""

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
    return drf_exception_handler(exc, context)


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
