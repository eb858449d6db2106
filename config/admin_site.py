"""The admin, with the sync dashboard on its home page."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse


class BackOfficeAdminSite(AdminSite):
    site_header = "S-360 → CRM sync"
    site_title = "S-360 → CRM sync"
    index_title = "Dashboard"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        from sync.dashboard import dashboard

        context = {**(extra_context or {})}
        if request.user.has_perm("webhooks.view_endpoint"):
            context["dashboard"] = dashboard()
        return super().index(request, context)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "config.admin_site.BackOfficeAdminSite"


class RefuseForbiddenActions:
    """A ModelAdmin mixin: an action the user may not run is refused with 403. Without it,
    Django ignores it silently (the list again, "No action selected")."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        names = request.POST.getlist("action")
        if names and request.POST.get("index", "0").isdigit():
            index = int(request.POST.get("index", "0"))
            # The action Django would run: the one of the form that was submitted.
            name = names[index] if index < len(names) else ""
            declared = {action[1] for action in self._get_base_actions()}  # type: ignore[attr-defined]
            if name in declared and name not in self.get_actions(request):  # type: ignore[attr-defined]
                raise PermissionDenied
        return super().changelist_view(request, extra_context)  # type: ignore[misc]
