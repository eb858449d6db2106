"""The admin, with the sync dashboard on its home page."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
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
