"""oVirt's five built-in migration policies, with their ids and values."""

from django.db import migrations

STALLING = [[1, 150], [2, 200], [3, 300], [4, 400], [6, 500]]


def _set_downtime(ms):
    return {"name": "setDowntime", "params": [str(ms)]}


def _stalling(pairs):
    return [{"limit": limit, "action": _set_downtime(ms)} for limit, ms in pairs]


ABORT = {"name": "abort", "params": []}
BUILTINS = [
    {
        "id": "00000000-0000-0000-0000-000000000000",
        "name": "Legacy",
        "description": "The hypervisor's own downtime schedule; auto-convergence and compression "
        "come from the cluster. Offered only below compatibility version 4.3.",
        "max_migrations": 2,
        "auto_convergence": "inherit",
        "migration_compression": "inherit",
        "enable_guest_events": False,
        "zerocopy": False,
        "convergence": {"initial": None, "stalling": [], "last": []},
    },
    {
        "id": "80554327-0569-496b-bdeb-fcbbf52b827b",
        "name": "Minimal downtime",
        "description": "Keeps the guest running with a short downtime; aborts a migration that does not converge.",
        "max_migrations": 2,
        "auto_convergence": "true",
        "migration_compression": "false",
        "enable_guest_events": True,
        "zerocopy": False,
        "convergence": {"initial": 100, "stalling": _stalling(STALLING), "last": [ABORT]},
    },
    {
        "id": "80554327-0569-496b-bdeb-fcbbf52b827c",
        "name": "Suspend workload if needed",
        "description": "Like Minimal downtime, but allows a long downtime (5 s) before giving up, "
        "so busy guests converge.",
        "max_migrations": 1,
        "auto_convergence": "true",
        "migration_compression": "true",
        "enable_guest_events": True,
        "zerocopy": False,
        "convergence": {"initial": 100, "stalling": _stalling(STALLING), "last": [_set_downtime(5000), ABORT]},
    },
    {
        "id": "a7aeedb2-8d66-4e51-bb22-32595027ce71",
        "name": "Post-copy migration",
        "description": "Switches to post-copy when the migration does not converge; the guest runs "
        "on the destination while the rest of its memory follows.",
        "max_migrations": 2,
        "auto_convergence": "true",
        "migration_compression": "false",
        "enable_guest_events": True,
        "zerocopy": False,
        "convergence": {
            "initial": 100,
            "stalling": _stalling([[1, 150], [2, 200]]),
            "last": [{"name": "postcopy", "params": []}, ABORT],
        },
    },
    {
        "id": "57237b82-b8c2-425f-b425-114b35219626",
        "name": "Very large VMs",
        "description": "Zero-copy migration over parallel connections for VMs with very large "
        "memory, with longer downtimes. Needs parallel migrations and no encryption.",
        "max_migrations": 1,
        "auto_convergence": "true",
        "migration_compression": "false",
        "enable_guest_events": True,
        "zerocopy": True,
        "convergence": {
            "initial": 300,
            "stalling": _stalling([[1, 400], [2, 500], [3, 700], [4, 1000], [6, 1500]]),
            "last": [_set_downtime(5000), ABORT],
        },
    },
]


def create_builtins(apps, schema_editor):
    policy_model = apps.get_model("policies", "MigrationPolicy")
    for values in BUILTINS:
        values = dict(values)
        policy_model.objects.update_or_create(id=values.pop("id"), defaults=dict(values, builtin=True))


def remove_builtins(apps, schema_editor):
    apps.get_model("policies", "MigrationPolicy").objects.filter(builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]
    operations = [migrations.RunPython(create_builtins, remove_builtins)]
