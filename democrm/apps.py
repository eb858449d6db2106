from django.apps import AppConfig


class DemoCrmConfig(AppConfig):
    """A small reference CRM receiver: what a CRM developer's webhook should do."""

    name = "democrm"
    verbose_name = "Demo CRM (reference receiver)"
