"""Test settings: SQLite in memory unless DATABASE_URL points at PostgreSQL (as in CI)."""

import os

os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, Path

SECRET_KEY = "test-only-secret-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"anon": "1000/minute", "user": "100000/minute"},
}

import tempfile as _tempfile  # noqa: E402

MEDIA_ROOT = Path(_tempfile.mkdtemp(prefix="s360-test-media-"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files come straight from the apps here; collectstatic is for production.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
