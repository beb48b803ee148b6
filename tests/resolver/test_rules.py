"""Worked examples and single rules of the resolver, each a specification of one behaviour."""

import importlib
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from migrations_app.resolver import (
    ClusterValues,
    Defaults,
    HostValues,
    PolicyValues,
    VMValues,
    invariant_violations,
    resolve_plan,
)

BUILTINS = {
    p["name"]: PolicyValues(
        id=p["id"],
        name=p["name"],
        max_migrations=p["max_migrations"],
        auto_convergence=p["auto_convergence"],
        migration_compression=p["migration_compression"],
        zerocopy=p["zerocopy"],
        convergence=p["convergence"],
    )
    for p in importlib.import_module("policies.migrations.0002_builtin_policies").BUILTINS
}
VLVM = BUILTINS["Very large VMs"]
MINIMAL = BUILTINS["Minimal downtime"]
POSTCOPY = BUILTINS["Post-copy migration"]
SUSPEND = BUILTINS["Suspend workload if needed"]
LEGACY = BUILTINS["Legacy"]
CAPABLE = {"zerocopy_migrations": True, "parallel_migrations": True}


def cluster(**overrides) -> ClusterValues:
    values = {
        "compatibility_version": "4.7",
        "parallel_migrations_supported": True,
        "policy": MINIMAL,
        "migration_bandwidth": "auto",
        "migration_bandwidth_custom_mbps": None,
        "migration_auto_converge": "inherit",
        "migration_compressed": "inherit",
        "migration_encrypted": "inherit",
        "parallel_migrations_policy": "disabled",
        "custom_parallel_migrations": None,
    }
    return ClusterValues(**(values | overrides))


def plan_for(*, vcpus=16, vm_policy=None, source=None, link=None, defaults=None, vm=None, **cluster_overrides):
    source_caps = CAPABLE if source is None else source
    return resolve_plan(
        vm=vm or VMValues(vcpus=vcpus, policy=vm_policy),
        cluster=cluster(**cluster_overrides),
        source=HostValues(
            address="10.1.0.1", destination_uri="qemu+tls://a/system", link_speed_mbps=link, **source_caps
        ),
        destination=HostValues(address="10.1.0.2", destination_uri="qemu+tls://10.1.0.2/system", link_speed_mbps=link),
        defaults=defaults or Defaults(),
    ).to_dict()


def codes(plan) -> list[str]:
    return [d["code"] for d in plan["decisions"]]


def test_100_gbits_custom_bandwidth_with_16_vcpus_gives_9_connections():
    plan = plan_for(
        policy=VLVM,
        migration_bandwidth="custom",
        migration_bandwidth_custom_mbps=100_000,
        parallel_migrations_policy="auto",
    )
    assert plan["parallel_connections"] == 9
    assert plan["max_bandwidth_mib_s"] == 12_500
    assert plan["libvirt"]["params"]["parallel.connections"] == 9
    assert plan["zerocopy"] is True


def test_10_gbits_with_auto_is_not_parallel():
    plan = plan_for(
        migration_bandwidth="custom", migration_bandwidth_custom_mbps=10_000, parallel_migrations_policy="auto"
    )
    assert plan["parallel_connections"] is None
    assert "VIR_MIGRATE_PARALLEL" not in plan["libvirt"]["flags"]
    assert codes(plan) == ["parallel_fallback"]


def test_10_gbits_with_auto_parallel_gives_2_connections():
    plan = plan_for(
        migration_bandwidth="custom", migration_bandwidth_custom_mbps=10_000, parallel_migrations_policy="auto_parallel"
    )
    assert plan["parallel_connections"] == 2
    assert codes(plan) == ["parallel_fallback"]


def test_very_large_vms_sends_zerocopy_and_parallel_to_libvirt():
    plan = plan_for(policy=VLVM, parallel_migrations_policy="custom", custom_parallel_migrations=4, link=20_000)
    flags = plan["libvirt"]["flags"]
    assert {"VIR_MIGRATE_ZEROCOPY", "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER"} <= set(flags)
    assert plan["decisions"] == []
    assert plan["incoming_limit"] == plan["outgoing_limit"] == 1
    assert plan["convergence_schedule"]["init"] == [{"name": "setDowntime", "params": ["300"]}]
    assert plan["convergence_schedule"]["stalling"][-2:] == [
        {"limit": -1, "action": {"name": "setDowntime", "params": ["5000"]}},
        {"limit": -1, "action": {"name": "abort", "params": []}},
    ]


def test_zerocopy_enforces_parallel_when_disabled():
    plan = plan_for(policy=VLVM, parallel_migrations_policy="disabled", migration_bandwidth="hypervisor_default")
    assert codes(plan) == ["parallel_enforced", "bandwidth_hypervisor_default", "parallel_fallback"]
    assert plan["parallel_connections"] == 2
    assert plan["zerocopy"] is True


def test_encryption_turns_zerocopy_off_and_gives_tls():
    plan = plan_for(
        policy=VLVM,
        migration_encrypted="true",
        parallel_migrations_policy="custom",
        custom_parallel_migrations=4,
        link=20_000,
    )
    assert plan["zerocopy"] is False
    assert "VIR_MIGRATE_ZEROCOPY" not in plan["libvirt"]["flags"]
    assert "VIR_MIGRATE_TLS" in plan["libvirt"]["flags"]
    # The name in the destination's certificate: the host its libvirt connection names (as Vdsm
    # sends the management host name), not the migration address.
    assert plan["libvirt"]["params"]["tls.destination"] == "10.1.0.2"  # the destination's control host
    assert codes(plan) == ["zerocopy_disabled_encryption"]


def test_a_vm_can_turn_encryption_off_for_itself():
    plan = plan_for(
        policy=VLVM, migration_encrypted="true", vm=VMValues(vcpus=8, policy=None, migration_encrypted="false")
    )
    assert plan["zerocopy"] is True and plan["encrypted"] is False


def test_source_host_without_zerocopy_is_an_api_mismatch_and_the_migration_proceeds():
    plan = plan_for(policy=VLVM, source={"zerocopy_migrations": False, "parallel_migrations": True})
    assert plan["zerocopy"] is False
    assert codes(plan) == [
        "parallel_enforced",
        "zerocopy_unsupported_host",
        "bandwidth_unknown_link_speed",
        "parallel_fallback",
    ]
    assert plan["decisions"][1]["message"] == (
        "The source host does not support zero-copy, so this migration will copy memory normally."
    )
    assert plan["parallel_connections"] == 2  # parallel connections enforced for zero-copy stay


def test_a_host_that_never_reported_is_treated_as_without_zerocopy():
    plan = plan_for(policy=VLVM, source={})
    assert plan["zerocopy"] is False
    assert "zerocopy_unsupported_host" in codes(plan)


def test_host_without_parallel_gets_neither_parallel_nor_zerocopy():
    plan = plan_for(policy=VLVM, source={"zerocopy_migrations": True, "parallel_migrations": False})
    assert "VIR_MIGRATE_PARALLEL" not in plan["libvirt"]["flags"]
    assert plan["zerocopy"] is False
    assert "parallel_unsupported_host" in codes(plan)


def test_very_large_vms_at_a_level_without_parallel_reports_the_level():
    plan = plan_for(
        policy=VLVM,
        compatibility_version="4.6",
        parallel_migrations_supported=False,
        parallel_migrations_policy="auto",
        link=20_000,
    )
    assert plan["zerocopy"] is False
    assert plan["parallel_connections"] is None
    assert codes(plan) == ["parallel_unsupported_level", "zerocopy_unsupported_level"]
    assert plan["incoming_limit"] == VLVM.max_migrations


def test_parallel_migration_switches_compression_off():
    plan = plan_for(policy=SUSPEND, parallel_migrations_policy="custom", custom_parallel_migrations=4, link=20_000)
    assert plan["compressed"] is False
    assert "VIR_MIGRATE_COMPRESSED" not in plan["libvirt"]["flags"]
    assert codes(plan) == ["compression_disabled"]


def test_suspend_workload_compresses_when_not_parallel():
    plan = plan_for(policy=SUSPEND)
    assert "VIR_MIGRATE_COMPRESSED" in plan["libvirt"]["flags"]
    assert plan["incoming_limit"] == plan["outgoing_limit"] == 1  # the policy's max_migrations


def test_parallel_migration_removes_postcopy_steps():
    plan = plan_for(policy=POSTCOPY, parallel_migrations_policy="custom", custom_parallel_migrations=4, link=20_000)
    assert plan["post_copy"] is False
    assert all(step["action"]["name"] != "postcopy" for step in plan["convergence_schedule"]["stalling"])
    assert codes(plan) == ["postcopy_removed"]


def test_postcopy_policy_sets_the_postcopy_flag_when_not_parallel():
    plan = plan_for(policy=POSTCOPY)
    assert plan["post_copy"] is True
    assert "VIR_MIGRATE_POSTCOPY" in plan["libvirt"]["flags"]


def test_bandwidth_is_divided_by_the_cluster_policys_max_migrations():
    plan = plan_for(policy=MINIMAL, migration_bandwidth="custom", migration_bandwidth_custom_mbps=8000)
    assert plan["max_bandwidth_mib_s"] == 500  # 8000/8 = 1000 MiB/s over 2 migrations
    assert plan["libvirt"]["params"]["bandwidth"] == 500


def test_auto_bandwidth_uses_the_slower_link_and_unknown_links_give_the_hosts_own_cap():
    assert plan_for(link=20_000, parallel_migrations_policy="disabled")["max_bandwidth_mib_s"] == 1250
    unknown = plan_for(link=None, parallel_migrations_policy="auto")
    # Never unthrottled: Vdsm's migration_max_bandwidth (52 MiB/s) when the source reports no cap.
    assert unknown["max_bandwidth_mib_s"] == 52
    assert unknown["libvirt"]["params"]["bandwidth"] == 52
    assert codes(unknown) == ["bandwidth_unknown_link_speed", "parallel_fallback"]
    assert "52 MiB/s" in unknown["decisions"][0]["message"]


def test_hypervisor_default_bandwidth_is_the_source_hosts_own_cap():
    plan = plan_for(migration_bandwidth="hypervisor_default", link=40_000)
    assert plan["libvirt"]["params"]["bandwidth"] == 52
    assert codes(plan) == ["bandwidth_hypervisor_default"]
    capped = plan_for(
        migration_bandwidth="hypervisor_default",
        source=CAPABLE | {"max_bandwidth_mib_s": 300, "name": "kvm-a"},
        policy=MINIMAL,  # 2 concurrent migrations: a host's own cap is per migration, never shared
    )
    assert capped["libvirt"]["params"]["bandwidth"] == capped["max_bandwidth_mib_s"] == 300
    assert "the source host kvm-a's configured cap of 300 MiB/s" in capped["decisions"][0]["message"]


def test_the_automatic_count_comes_from_the_clusters_figure_before_it_is_shared():
    """25 Gbit/s with Auto: oVirt uses 2 connections although the policy's 2 migrations share it."""
    plan = plan_for(
        policy=MINIMAL,
        migration_bandwidth="custom",
        migration_bandwidth_custom_mbps=25_000,
        parallel_migrations_policy="auto",
    )
    assert plan["parallel_connections"] == 2
    assert plan["max_bandwidth_mib_s"] == 3125 // 2  # the bandwidth itself is shared
    assert codes(plan) == []


def test_abort_on_error_is_always_asked_for():
    assert "VIR_MIGRATE_ABORT_ON_ERROR" in plan_for()["libvirt"]["flags"]


def test_custom_connections_are_capped_by_vcpus_but_at_least_2():
    assert (
        plan_for(vcpus=4, parallel_migrations_policy="custom", custom_parallel_migrations=16)["parallel_connections"]
        == 4
    )
    assert (
        plan_for(vcpus=1, parallel_migrations_policy="custom", custom_parallel_migrations=16)["parallel_connections"]
        == 2
    )


def test_automatic_connections_are_capped_at_255():
    plan = plan_for(
        vcpus=1024,
        policy=VLVM,
        migration_bandwidth="custom",
        migration_bandwidth_custom_mbps=8_000_000,
        parallel_migrations_policy="auto",
    )
    assert plan["parallel_connections"] == 255


def test_legacy_takes_auto_converge_and_compression_from_the_cluster_then_defaults():
    assert "VIR_MIGRATE_AUTO_CONVERGE" in plan_for(policy=LEGACY, migration_auto_converge="true")["libvirt"]["flags"]
    inherited = plan_for(policy=LEGACY, defaults=Defaults(auto_converge=True, compressed=True))
    assert {"VIR_MIGRATE_AUTO_CONVERGE", "VIR_MIGRATE_COMPRESSED"} <= set(inherited["libvirt"]["flags"])
    # Legacy sets no schedule: the plan carries the hypervisor's own, as Vdsm builds it, and says so.
    legacy = plan_for(policy=LEGACY)
    assert legacy["convergence_schedule"] == {
        "init": [{"name": "setDowntime", "params": ["101"]}],
        "stalling": [
            {"limit": 1, "action": {"name": "setDowntime", "params": ["104"]}},
            {"limit": 2, "action": {"name": "setDowntime", "params": ["120"]}},
            {"limit": 3, "action": {"name": "setDowntime", "params": ["189"]}},
            {"limit": 4, "action": {"name": "setDowntime", "params": ["500"]}},
            {"limit": 42, "action": {"name": "setDowntime", "params": ["500"]}},
            {"limit": -1, "action": {"name": "abort", "params": []}},
        ],
    }
    assert "hypervisor_schedule" in [d["code"] for d in legacy["decisions"]]
    assert legacy["post_copy"] is False


def test_a_vm_policy_overrides_the_clusters():
    plan = plan_for(policy=MINIMAL, vm_policy=VLVM)
    assert plan["policy"] == {"id": VLVM.id, "name": "Very large VMs"}
    assert plan["zerocopy"] is True


def test_the_plan_has_the_contract_shape():
    plan = plan_for(policy=VLVM)
    assert set(plan) == {
        "policy",
        "zerocopy",
        "parallel_connections",
        "encrypted",
        "compressed",
        "auto_converge",
        "post_copy",
        "max_bandwidth_mib_s",
        "incoming_limit",
        "outgoing_limit",
        "convergence_schedule",
        "libvirt",
        "decisions",
    }
    assert set(plan["libvirt"]) == {"destination_uri", "flags", "params"}
    assert plan["libvirt"]["destination_uri"] == "qemu+tls://10.1.0.2/system"
    assert plan["libvirt"]["params"]["migrate_uri"] == "tcp://10.1.0.2"


# One plan takes well under a millisecond; the deadline is far above that, so a CI machine shared
# with other jobs cannot trip it, while a resolver that loops for seconds on some input still fails.
@settings(deadline=timedelta(seconds=2))
@given(
    vcpus=st.integers(1, 4096),
    mbps=st.one_of(st.none(), st.integers(1, 10_000_000)),
    link=st.one_of(st.none(), st.integers(1, 1_000_000)),
    bandwidth=st.sampled_from(["auto", "hypervisor_default", "custom"]),
    parallel=st.sampled_from(["disabled", "auto", "auto_parallel", "custom"]),
    count=st.integers(2, 255),
    policy=st.sampled_from(list(BUILTINS.values())),
    encrypted=st.sampled_from(["inherit", "true", "false"]),
)
def test_any_numbers_give_a_valid_plan(vcpus, mbps, link, bandwidth, parallel, count, policy, encrypted):
    plan = plan_for(
        vcpus=vcpus,
        link=link,
        policy=policy,
        migration_bandwidth=bandwidth if (bandwidth != "custom" or mbps) else "auto",
        migration_bandwidth_custom_mbps=mbps,
        parallel_migrations_policy=parallel,
        custom_parallel_migrations=count,
        migration_encrypted=encrypted,
    )
    assert invariant_violations(plan) == []
    if plan["parallel_connections"] is not None:
        assert 2 <= plan["parallel_connections"] <= 255
