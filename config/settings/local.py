"""Local development and the embedded mode: SQLite + filesystem broker, the CRM on localhost."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")

from .base import *  # noqa: F403
