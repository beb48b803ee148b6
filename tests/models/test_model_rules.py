"""Model rules: bad values give a clear error on the right field, and nothing is stored."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clusters import services as cluster_services
from clusters.models import VM, Cluster, ClusterLevel, Host
from core.models import AuditEntry
from policies import services as policy_services
from policies.models import LEGACY_ID, MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID, MigrationPolicy
from tests.factories import ClusterFactory, HostFactory

pytestmark = pytest.mark.django_db


def refused(call, field: str) -> str:
    """Run a service call that must be refused; return the message for `field`."""
    with pytest.raises(ValidationError) as error:
        call()
    assert field in error.value.message_dict, error.value.message_dict
    return " ".join(error.value.message_dict[field])


def test_the_builtins_and_levels_exist_after_migrate():
    names = dict(MigrationPolicy.objects.filter(builtin=True).values_list("id", "name"))
    assert names == {
        LEGACY_ID: "Legacy",
        MINIMAL_DOWNTIME_ID: "Minimal downtime",
        uuid.UUID("80554327-0569-496b-bdeb-fcbbf52b827c"): "Suspend workload if needed",
        uuid.UUID("a7aeedb2-8d66-4e51-bb22-32595027ce71"): "Post-copy migration",
        VERY_LARGE_VMS_ID: "Very large VMs",
    }
    levels = dict(ClusterLevel.objects.values_list("level", "parallel_migrations_supported"))
    assert levels == {"4.2": False, "4.3": False, "4.4": False, "4.5": False, "4.6": False, "4.7": True, "4.8": True}
    vlvm = MigrationPolicy.objects.get(pk=VERY_LARGE_VMS_ID)
    assert (vlvm.zerocopy, vlvm.max_migrations, vlvm.convergence["initial"]) == (True, 1, 300)


def test_a_new_cluster_has_the_contract_defaults(actor):
    cluster = cluster_services.cluster_create(actor=actor, data={"name": "prod"})
    assert cluster.compatibility_version_id == "4.7"
    assert cluster.migration_policy_id == MINIMAL_DOWNTIME_ID
    assert (cluster.migration_bandwidth, cluster.parallel_migrations_policy) == ("auto", "disabled")
    assert (cluster.migration_encrypted, cluster.error_handling, cluster.version) == ("inherit", "migrate", 1)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_id, entry.before) == ("create", "admin", str(cluster.pk), None)


@pytest.mark.parametrize("count", [0, 1, 256, 1000])
def test_custom_parallel_count_out_of_range_is_refused(actor, count):
    message = refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "c", "parallel_migrations_policy": "custom", "custom_parallel_migrations": count}
        ),
        "custom_parallel_migrations",
    )
    assert "2" in message and "255" in message
    assert not Cluster.objects.exists()
    assert not AuditEntry.objects.exists()


def test_custom_parallel_without_a_count_is_refused(actor):
    message = refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "c", "parallel_migrations_policy": "custom"}
        ),
        "custom_parallel_migrations",
    )
    assert "Enter the number of parallel connections" in message
    assert not Cluster.objects.exists()


def test_a_count_is_ignored_unless_custom(actor):
    cluster = cluster_services.cluster_create(
        actor=actor, data={"name": "c", "parallel_migrations_policy": "auto", "custom_parallel_migrations": 8}
    )
    assert cluster.parallel_migrations_policy == "auto"


@pytest.mark.parametrize("mbps", [None, 0])
def test_custom_bandwidth_needs_a_positive_value(actor, mbps):
    refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "c", "migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": mbps}
        ),
        "migration_bandwidth_custom_mbps",
    )
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parallel_migrations_policy", "sometimes"),
        ("migration_bandwidth", "fast"),
        ("migration_encrypted", "yes"),
        ("migration_compressed", "1"),
        ("error_handling", "panic"),
    ],
)
def test_unknown_enum_values_are_refused(actor, field, value):
    message = refused(lambda: cluster_services.cluster_create(actor=actor, data={"name": "c", field: value}), field)
    assert "is not a valid choice" in message
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("level", ["4.2", "4.5", "4.6"])
def test_very_large_vms_is_refused_at_a_level_without_parallel(actor, level):
    message = refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "c", "compatibility_version_id": level, "migration_policy_id": VERY_LARGE_VMS_ID}
        ),
        "migration_policy",
    )
    assert "needs parallel migrations" in message
    assert not Cluster.objects.exists()


def test_very_large_vms_is_accepted_at_4_7(actor):
    cluster = cluster_services.cluster_create(
        actor=actor, data={"name": "c", "compatibility_version_id": "4.7", "migration_policy_id": VERY_LARGE_VMS_ID}
    )
    assert cluster.migration_policy_id == VERY_LARGE_VMS_ID


def test_legacy_is_offered_only_below_4_3(actor):
    cluster_services.cluster_create(
        actor=actor, data={"name": "old", "compatibility_version_id": "4.2", "migration_policy_id": LEGACY_ID}
    )
    refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "new", "compatibility_version_id": "4.3", "migration_policy_id": LEGACY_ID}
        ),
        "migration_policy",
    )


def test_parallel_settings_are_refused_at_a_level_without_parallel(actor):
    message = refused(
        lambda: cluster_services.cluster_create(
            actor=actor, data={"name": "c", "compatibility_version_id": "4.6", "parallel_migrations_policy": "auto"}
        ),
        "parallel_migrations_policy",
    )
    assert "only Disabled" in message


def test_a_level_losing_parallel_keeps_its_clusters_settings(actor):
    cluster = cluster_services.cluster_create(
        actor=actor, data={"name": "c", "migration_policy_id": VERY_LARGE_VMS_ID, "parallel_migrations_policy": "auto"}
    )
    level = ClusterLevel.objects.get(level="4.7")
    cluster_services.level_update(actor=actor, level=level, data={"parallel_migrations_supported": False})
    cluster = Cluster.objects.get(pk=cluster.pk)
    updated = cluster_services.cluster_update(actor=actor, cluster=cluster, data={"description": "still here"})
    assert updated.migration_policy_id == VERY_LARGE_VMS_ID
    assert updated.version == 2


def test_a_stale_update_is_refused_and_changes_nothing(actor):
    from core.services import StaleVersion

    cluster = ClusterFactory()
    first = Cluster.objects.get(pk=cluster.pk)
    second = Cluster.objects.get(pk=cluster.pk)
    cluster_services.cluster_update(actor=actor, cluster=first, data={"description": "one"}, expected_version=1)
    with pytest.raises(StaleVersion):
        cluster_services.cluster_update(actor=actor, cluster=second, data={"description": "two"}, expected_version=1)
    assert Cluster.objects.get(pk=cluster.pk).description == "one"
    assert AuditEntry.objects.filter(action="update").count() == 1


def test_an_update_records_before_and_after(actor):
    cluster = ClusterFactory()
    cluster_services.cluster_update(actor=actor, cluster=cluster, data={"migration_encrypted": "true"})
    entry = AuditEntry.objects.get(action="update")
    assert entry.before == {"migration_encrypted": "inherit"}
    assert entry.after == {"migration_encrypted": "true"}


def test_the_database_refuses_what_validation_would_refuse():
    cluster = ClusterFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(
            parallel_migrations_policy="custom", custom_parallel_migrations=None
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(custom_parallel_migrations=300)
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(migration_bandwidth="custom", migration_bandwidth_custom_mbps=None)


def test_host_needs_a_valid_uri_and_address(actor):
    cluster = ClusterFactory()
    refused(
        lambda: cluster_services.host_create(
            actor=actor, data={"name": "h", "cluster": cluster, "address": "10.0.0.1", "libvirt_uri": "not a uri"}
        ),
        "libvirt_uri",
    )
    refused(
        lambda: cluster_services.host_create(
            actor=actor,
            data={"name": "h", "cluster": cluster, "address": "bad address!", "libvirt_uri": "qemu:///system"},
        ),
        "address",
    )
    assert not Host.objects.exists()


def test_monitoring_statuses_cannot_be_set_by_admins(actor):
    host = HostFactory()
    refused(lambda: cluster_services.host_update(actor=actor, host=host, data={"status": "non_operational"}), "status")


@pytest.mark.parametrize(
    "report",
    [
        {"zerocopy_migrations": "yes"},
        {"cpu_count": -1},
        {"favourite_colour": "blue"},
        {"libvirt_version": "9; rm"},
        {"migration_pulse_s": 0},
        {"migration_stall_s": -5.0},
        {"migration_timeout_s": True},
        {"migration_stall_s": 10**9},
        {"migration_pulse_s": float("nan")},
        {"migration_timeout_s": float("inf")},
        {"migration_pulse_s": "10"},
    ],
)
def test_bad_capability_reports_are_refused(actor, report):
    host = HostFactory(capabilities={})
    refused(
        lambda: cluster_services.host_report_capabilities(actor=actor, host=host, capabilities=report), "capabilities"
    )
    assert Host.objects.get(pk=host.pk).capabilities == {}


def test_a_vm_override_must_be_offered_at_its_clusters_level(actor):
    host = HostFactory(cluster=ClusterFactory(compatibility_version=ClusterLevel.objects.get(level="4.6")))
    refused(
        lambda: cluster_services.vm_create(
            actor=actor,
            data={
                "name": "big",
                "uuid": uuid.uuid4(),
                "host": host,
                "memory_mib": 1024,
                "vcpus": 2,
                "migration_policy_id": VERY_LARGE_VMS_ID,
            },
        ),
        "migration_policy",
    )
    assert not VM.objects.exists()


def test_a_vm_needs_positive_memory_and_vcpus(actor):
    host = HostFactory()
    refused(
        lambda: cluster_services.vm_create(
            actor=actor, data={"name": "v", "uuid": uuid.uuid4(), "host": host, "memory_mib": 0, "vcpus": 1}
        ),
        "memory_mib",
    )


def test_builtin_policies_are_read_only(actor):
    from django.core.exceptions import PermissionDenied

    vlvm = MigrationPolicy.objects.get(pk=VERY_LARGE_VMS_ID)
    with pytest.raises(PermissionDenied):
        policy_services.policy_update(actor=actor, policy=vlvm, data={"max_migrations": 5})
    with pytest.raises(PermissionDenied):
        policy_services.policy_delete(actor=actor, policy=vlvm)
    assert MigrationPolicy.objects.get(pk=VERY_LARGE_VMS_ID).max_migrations == 1


@pytest.mark.parametrize(
    "convergence",
    [
        {"initial": -5, "stalling": [], "last": []},
        {"initial": 100, "stalling": [{"limit": 2, "action": {"name": "setDowntime", "params": ["x"]}}], "last": []},
        {"initial": 100, "stalling": [], "last": [{"name": "reboot", "params": []}]},
        {
            "initial": 100,
            "stalling": [
                {"limit": 3, "action": {"name": "setDowntime", "params": ["200"]}},
                {"limit": 2, "action": {"name": "setDowntime", "params": ["300"]}},
            ],
            "last": [],
        },
        "not a schedule",
    ],
)
def test_bad_convergence_schedules_are_refused(actor, convergence):
    refused(
        lambda: policy_services.policy_create(actor=actor, data={"name": "mine", "convergence": convergence}),
        "convergence",
    )
    assert not MigrationPolicy.objects.filter(builtin=False).exists()


def test_a_policy_in_use_at_a_level_without_parallel_cannot_gain_zerocopy(actor):
    policy = policy_services.policy_create(actor=actor, data={"name": "mine"})
    ClusterFactory(compatibility_version=ClusterLevel.objects.get(level="4.5"), migration_policy=policy)
    refused(lambda: policy_services.policy_update(actor=actor, policy=policy, data={"zerocopy": True}), "zerocopy")


def test_deleting_a_cluster_with_hosts_is_refused_with_a_message(actor):
    host = HostFactory()
    with pytest.raises(ValidationError) as error:
        cluster_services.cluster_delete(actor=actor, cluster=host.cluster)
    assert "still used by" in error.value.messages[0]
    assert Cluster.objects.filter(pk=host.cluster_id).exists()
    assert not AuditEntry.objects.filter(action="delete").exists()
