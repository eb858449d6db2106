"""Settings shared by every environment; deployment-specific values come from the environment."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; a missing file is fine

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "config.admin_site.BackOfficeAdminConfig",  # django.contrib.admin with the dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "simple_history",
    "orders",
    "webhooks",
    "sync",
    "reconciliation",
    "democrm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# SQLite in the project by default (the embedded mode), PostgreSQL through DATABASE_URL.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock at BEGIN so two writers queue on busy_timeout instead of failing
    # with "database is locked" halfway through a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
            ),
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploaded exports of reconciliations (and their work files) live here.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "media/"
# Reconciliation uploads above this size are refused with 413; DuckDB's memory per job.
RECONCILIATION_MAX_UPLOAD_BYTES = env.int("RECONCILIATION_MAX_UPLOAD_MB", default=2048) * 2**20
RECONCILIATION_MEMORY_LIMIT = env("RECONCILIATION_MEMORY_LIMIT", default="1GB")

# --- Caches (DRF throttling counts here) -----------------------------------------------------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Celery --------------------------------------------------------------------------------
# Filesystem broker by default so the embedded mode needs no server; Redis in production.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env("CELERY_BROKER_DIR", default=str(BASE_DIR / "var" / "broker")))
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task (an execution: 10 payloads x 30 s; a reconciliation of
    # ten million rows: about a minute), so Redis does not hand a running task to a second
    # worker; a killed worker's task comes back after it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat saves each task's last run after every send, not every 3 minutes: /health/ reads the
# dispatcher's (a minute's tick), and a restarted beat does not send a tick twice.
CELERY_BEAT_SYNC_EVERY = 1

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/minute"),
        "user": env("API_THROTTLE_USER", default="6000/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "S-360 → CRM order sync API",
    "DESCRIPTION": (
        "Feed S-360 orders in (getOrderDetails shape, camelCase, amounts in thousandths), "
        "read them back with their syncVersion, and download the S-360 flat-file export."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStateEnum": "orders.models.OrderState",
        "OrderTypeEnum": "orders.models.OrderType",
        "OrderOriginatorEnum": "orders.models.OrderOriginator",
    },
    # The error answers are added to every operation (config.api.document_errors), in the
    # served schema and in `manage.py spectacular` alike.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.document_errors",
    ],
}

# The largest JSON body accepted (a bulk of 1000 multi-operation orders is ~5 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)

# Endpoint URLs resolving to loopback/private addresses are refused unless this is on.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Sending to the CRM. A POST gets this long in all (connect, headers, body: enforced as one
# deadline, so a CRM that drips its answer cannot hold an execution), connecting at most
# WEBHOOK_CONNECT_TIMEOUT_SECONDS of it.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=30.0)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5.0)
# An execution holds its endpoint this long, renewed before each payload; a worker that dies
# holds it at most this long. It must outlast one payload with room to spare.
SYNC_LEASE_SECONDS = env.float("SYNC_LEASE_SECONDS", default=120.0)
# A failed order is resent at the next three executions, then waits this long, doubling up
# to the maximum (S-360 itself resends at every run).
SYNC_RETRY_BACKOFF_SECONDS = env.float("SYNC_RETRY_BACKOFF_SECONDS", default=30 * 60.0)
SYNC_RETRY_MAX_BACKOFF_SECONDS = env.float("SYNC_RETRY_MAX_BACKOFF_SECONDS", default=24 * 3600.0)
for _name in (
    "WEBHOOK_TIMEOUT_SECONDS",
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS",
    "SYNC_LEASE_SECONDS",
    "SYNC_RETRY_BACKOFF_SECONDS",
    "SYNC_RETRY_MAX_BACKOFF_SECONDS",
):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of seconds.")
if SYNC_LEASE_SECONDS < 2 * WEBHOOK_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "SYNC_LEASE_SECONDS must be at least twice WEBHOOK_TIMEOUT_SECONDS: an execution "
        "must never lose its endpoint while one payload is still in flight."
    )
# Where the embedded run (setup_demo) keeps the admin password it generated.
ADMIN_CREDENTIALS_FILE = env(
    "ADMIN_CREDENTIALS_FILE", default=str(BASE_DIR / "var" / "admin-credentials.txt")
)
# /metrics asks for this bearer token when set (Prometheus' `authorization` option).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Deliveries (the log of every POST) older than this are pruned daily; the outbox never is.
DELIVERY_RETENTION_DAYS = env.int("DELIVERY_RETENTION_DAYS", default=30)
# Fernet key(s) for secrets at rest, comma-separated, newest first. Generate one with:
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="plain"),  # "json" for log shippers
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
