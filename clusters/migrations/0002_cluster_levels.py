"""Compatibility levels 4.2 .. 4.8; parallel migrations from 4.7 on, as oVirt's engine has it."""

from django.db import migrations

LEVELS = ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"]
PARALLEL_FROM = (4, 7)


def create_levels(apps, schema_editor):
    level_model = apps.get_model("clusters", "ClusterLevel")
    for level in LEVELS:
        supported = tuple(int(part) for part in level.split(".")) >= PARALLEL_FROM
        level_model.objects.update_or_create(level=level, defaults={"parallel_migrations_supported": supported})


def remove_levels(apps, schema_editor):
    apps.get_model("clusters", "ClusterLevel").objects.filter(level__in=LEVELS, clusters__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("clusters", "0001_initial"), ("policies", "0002_builtin_policies")]
    operations = [migrations.RunPython(create_levels, remove_levels)]
