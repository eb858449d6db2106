"""Local development and the embedded mode: SQLite + filesystem broker, the CRM on localhost."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")

from .base import *  # noqa: F403

# runserver serves static files itself; no collectstatic needed in the embedded mode.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files come straight from the apps here; collectstatic is for production.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
