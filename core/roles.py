"""The roles Ferry ships with: groups that admins give to users."""

from django.contrib.auth.models import Group, Permission

READ_ONLY_GROUP = "Read-only"
OPERATOR_GROUP = "Operators"
FERRY_APPS = ("clusters", "policies", "migrations_app", "core")
# Operators migrate and cancel (the job permissions) and run hosts (operate_host). They never hold
# change_host: a host's name, cluster, address and libvirt/peer URIs are the admins' alone.
OPERATOR_PERMISSIONS = (
    ("migrations_app", "add_migrationjob"),
    ("migrations_app", "change_migrationjob"),
    ("clusters", "operate_host"),
)


def roles_ensure() -> None:
    """Read-only: view everything. Operators: view everything, migrate, cancel and run hosts."""
    view = Permission.objects.filter(content_type__app_label__in=FERRY_APPS, codename__startswith="view_")
    read_only, _ = Group.objects.get_or_create(name=READ_ONLY_GROUP)
    read_only.permissions.set(view)
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    operate = [
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in OPERATOR_PERMISSIONS
    ]
    operator.permissions.set(list(view) + operate)
