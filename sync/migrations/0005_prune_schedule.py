"""The daily pruning of the delivery log exists right after `migrate`."""

from django.db import migrations

NAME = "sync: prune the delivery log (daily)"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    PeriodicTask.objects.update_or_create(
        name=NAME, defaults={"task": "sync.tasks.prune_deliveries", "interval": daily}
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("sync", "0004_roles")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
