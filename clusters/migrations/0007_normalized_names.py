"""Cluster and host names unique after NFKC normalization and case folding (core.names).

Existing look-alike duplicates (which the old rule let in) keep their names: the first of each
group by creation order takes the key, the others get a key of their own marked with their id, and
the next edit of one of them asks for a different name.
"""

import unicodedata

from django.db import migrations, models

import core.names


def _key(name: str) -> str:
    # core.names.name_key as it was written with this migration (a migration does not import the app).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def fill_keys(apps, schema_editor):
    for model_name in ("Cluster", "Host"):
        model = apps.get_model("clusters", model_name)
        taken = set()
        for row in model.objects.order_by("pk").only("pk", "name"):
            key = _key(row.name)
            if key in taken:
                key = f"{key} (duplicate {row.pk})"
            taken.add(key)
            model.objects.filter(pk=row.pk).update(name_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0006_host_truth"),
    ]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="name_key",
            field=core.names.NameKeyField(default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="host",
            name="name_key",
            field=core.names.NameKeyField(default=""),
            preserve_default=False,
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="cluster",
            constraint=models.UniqueConstraint(fields=("name_key",), name="cluster_name_key_unique"),
        ),
        migrations.AddConstraint(
            model_name="host",
            constraint=models.UniqueConstraint(fields=("name_key",), name="host_name_key_unique"),
        ),
        migrations.AlterField(
            model_name="cluster",
            name="name",
            field=models.CharField(max_length=100, unique=True, validators=[core.names.validate_name]),
        ),
        migrations.AlterField(
            model_name="host",
            name="name",
            field=models.CharField(max_length=100, unique=True, validators=[core.names.validate_name]),
        ),
        migrations.AlterField(
            model_name="vm",
            name="name",
            field=models.CharField(max_length=100, validators=[core.names.validate_name]),
        ),
    ]
