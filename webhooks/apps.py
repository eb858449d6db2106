from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """CRM webhook endpoint configuration (URL, secret, frequency, caps): the sync issue."""

    name = "webhooks"
    verbose_name = "CRM webhook endpoints"
