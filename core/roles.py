"""The roles Ferry ships with: groups that admins give to users."""

from django.contrib.auth.models import Group, Permission

READ_ONLY_GROUP = "Read-only"
OPERATOR_GROUP = "Operators"
FERRY_APPS = ("clusters", "policies", "migrations_app", "core")


def roles_ensure() -> None:
    """Read-only: view everything. Operators: view everything and run, cancel and maintain."""
    view = Permission.objects.filter(content_type__app_label__in=FERRY_APPS, codename__startswith="view_")
    read_only, _ = Group.objects.get_or_create(name=READ_ONLY_GROUP)
    read_only.permissions.set(view)
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    operate = Permission.objects.filter(
        content_type__app_label__in=FERRY_APPS,
        codename__in=("add_migrationjob", "change_migrationjob", "change_host"),
    )
    operator.permissions.set(list(view) + list(operate))
