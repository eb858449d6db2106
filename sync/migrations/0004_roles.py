"""Roles as groups, present right after `migrate`: each person gets one and is kept to their
job. The README's "Roles" table describes them; tests/test_roles.py holds them to it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_ALL = [
    ("orders", "view_order"),
    ("webhooks", "view_endpoint"),
    ("sync", "view_syncrun"),
    ("sync", "view_delivery"),
    ("sync", "view_pendingorder"),
    ("sync", "view_initialimport"),
    ("reconciliation", "view_reconciliation"),
    ("democrm", "view_crmorder"),
]
ROLES = {
    # CRM endpoints and their executions.
    "Integrator": VIEW_ALL
    + [
        ("webhooks", "add_endpoint"),
        ("webhooks", "change_endpoint"),
        ("webhooks", "delete_endpoint"),
    ],
    # Initial imports, reconciliation, replay of parked orders; never where orders go.
    "Support": VIEW_ALL
    + [
        ("sync", "add_initialimport"),
        ("sync", "change_initialimport"),
        ("sync", "change_pendingorder"),
        ("reconciliation", "add_reconciliation"),
        ("reconciliation", "change_reconciliation"),
    ],
    "Read-only": VIEW_ALL,
    # Feeds orders in, reads sync state out.
    "API client": [
        ("orders", "view_order"),
        ("orders", "add_order"),
        ("orders", "change_order"),
        ("webhooks", "view_endpoint"),
        ("sync", "view_syncrun"),
        ("sync", "view_delivery"),
        ("sync", "view_pendingorder"),
        ("sync", "view_initialimport"),
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations ran; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [
                Permission.objects.get(content_type__app_label=app, codename=codename)
                for app, codename in perms
            ]
        )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0003_initial_imports"),
        ("orders", "0001_initial"),
        ("webhooks", "0001_initial"),
        ("reconciliation", "0001_initial"),
        ("democrm", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
