from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from config.health import health
from config.metrics import metrics
from orders.api import CSVRenderer, OrderViewSet
from reconciliation.api import ReconciliationViewSet
from sync.api import ImportViewSet, RunViewSet
from webhooks.api import EndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("orders", OrderViewSet, basename="order")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("runs", RunViewSet, basename="run")
router.register("initial-imports", ImportViewSet, basename="initial-import")
router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("metrics", metrics, name="metrics"),
    # design.md's path has no trailing slash: a file name, not a collection.
    path(
        "api/v1/reconciliations/<int:pk>/report.csv",
        ReconciliationViewSet.as_view(
            {"get": "report"}, renderer_classes=[JSONRenderer, CSVRenderer], detail=True
        ),
        name="reconciliation-report-csv",
    ),
    path("api/v1/", include(router.urls)),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(),
        name="schema",
    ),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("democrm/", include("democrm.urls")),
]

handler404 = "config.api.not_found"
handler500 = "config.api.server_error"
