from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webhooks.crypto import reencrypt
from webhooks.models import Endpoint


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEY. Rotate a "
        "key by putting the new one first (keep the old one after it), run this, then drop "
        "the old key."
    )

    def handle(self, *args: object, **options: object) -> None:
        count = 0
        with transaction.atomic():
            for endpoint in Endpoint.objects.select_for_update():
                try:
                    signing = reencrypt(endpoint.signing_secret_encrypted)
                    auth = reencrypt(endpoint.auth_secret_encrypted)
                except ValueError as error:
                    # The transaction rolls back: all endpoints move to the new key, or none.
                    raise CommandError(
                        f"Endpoint {endpoint.pk} ({endpoint.name}): {error} Keep every old key "
                        "in FIELD_ENCRYPTION_KEY (after the new one) until this succeeds; "
                        "nothing was changed."
                    ) from None
                endpoint.signing_secret_encrypted = signing
                endpoint.auth_secret_encrypted = auth
                endpoint.save(update_fields=["signing_secret_encrypted", "auth_secret_encrypted"])
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {count} endpoints."))
