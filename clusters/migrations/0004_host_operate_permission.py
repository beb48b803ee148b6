"""Operators run hosts through their own permission, operate_host, and lose change_host (which
edits a host's connection fields). Existing "Operators" groups are corrected here; new ones get
the same from core.roles.roles_ensure()."""

from django.db import migrations

OPERATOR_GROUP = "Operators"


def correct_operators(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    operators = group_model.objects.filter(name=OPERATOR_GROUP).first()
    if operators is None:  # a fresh database: roles_ensure() creates the group right
        return
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    host_type, _ = content_type_model.objects.get_or_create(app_label="clusters", model="host")
    # Django creates model permissions after all migrations; this one is needed now.
    operate, _ = permission_model.objects.get_or_create(
        content_type=host_type,
        codename="operate_host",
        defaults={"name": "Can refresh hosts, put them into maintenance and activate them"},
    )
    operators.permissions.remove(*permission_model.objects.filter(content_type=host_type, codename="change_host"))
    operators.permissions.add(operate)


def restore_operators(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    operators = group_model.objects.filter(name=OPERATOR_GROUP).first()
    if operators is None:
        return
    permission_model = apps.get_model("auth", "Permission")
    host = {"content_type__app_label": "clusters", "content_type__model": "host"}
    operators.permissions.remove(*permission_model.objects.filter(codename="operate_host", **host))
    operators.permissions.add(*permission_model.objects.filter(codename="change_host", **host))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("clusters", "0003_vm_name_idx"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="host",
            options={
                "ordering": ["name"],
                "permissions": [("operate_host", "Can refresh hosts, put them into maintenance and activate them")],
            },
        ),
        migrations.RunPython(correct_operators, restore_operators),
    ]
