import os
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from democrm.models import Receiver
from orders.models import Order
from sync.tasks import DISPATCHER_TASK
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

DEMO_ORDERS = 500


class Command(BaseCommand):
    help = (
        "First-run set-up of the embedded demo: an admin user (credentials printed and kept "
        "in ADMIN_CREDENTIALS_FILE, var/admin-credentials.txt by default), an endpoint wired "
        "to the demo CRM, and demo orders, each when missing. Safe to re-run."
    )

    def handle(self, *args: object, **options: object) -> None:
        credentials = Path(settings.ADMIN_CREDENTIALS_FILE)
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@example.com", password)
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(f"admin\n{password}\n")
            credentials.chmod(0o600)
        port = os.environ.get("PORT", "8000")
        if not Endpoint.objects.exists():
            # Before the demo orders, so that they are changes this endpoint owes the CRM.
            endpoint, secret = endpoint_create(
                data={
                    "name": "Demo CRM",
                    "url": f"http://127.0.0.1:{port}/democrm/webhook/",
                    "frequency_minutes": 1,
                }
            )
            receiver = Receiver.current()
            receiver.signing_secret = secret
            receiver.save()
            self.stdout.write(f"Endpoint {endpoint.name!r} pushes to {endpoint.url} every minute.")
            # Beat then dispatches at start instead of a full minute later.
            PeriodicTask.objects.filter(task=DISPATCHER_TASK).update(
                last_run_at=timezone.now() - timedelta(minutes=5)
            )
        if not Order.objects.exists():
            call_command("seed_demo", orders=DEMO_ORDERS, stdout=self.stdout)
        login = (
            credentials.read_text().split()
            if credentials.exists()
            else ["admin", "(the password you set)"]
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\nAdmin:   http://127.0.0.1:{port}/admin/  user {login[0]}  password {login[1]}"
                f"\nAPI:     http://127.0.0.1:{port}/api/docs/"
                f"\nCRM:     http://127.0.0.1:{port}/admin/democrm/crmorder/ (the demo receiver)\n"
            )
        )
