"""migrations_app.notes: the cluster form's notes are the decisions of the resolver's own plans.

The expected sentences are written out here; the grid at the end checks that every decision a
migration between hosts that support everything can make is announced, and nothing else."""

import itertools

import pytest

from migrations_app.notes import COMMON_LINKS_MBPS, cluster_notes
from migrations_app.resolver import ClusterValues, Defaults, HostValues, PolicyValues, VMValues, resolve_plan

SCHEDULE = {
    "initial": 100,
    "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}}],
    "last": [],
}
POSTCOPY = {
    "initial": 100,
    "stalling": [],
    "last": [{"name": "postcopy", "params": []}, {"name": "abort", "params": []}],
}
VERY_LARGE = PolicyValues("vl", "Very large VMs", 1, "true", "false", True, SCHEDULE)
MINIMAL = PolicyValues("md", "Minimal downtime", 2, "true", "false", False, SCHEDULE)
POST_COPY = PolicyValues("pc", "Post-copy migration", 2, "true", "false", False, POSTCOPY)
COMPRESSING = PolicyValues("sw", "Suspend workload if needed", 1, "true", "true", False, SCHEDULE)
LEGACY = PolicyValues("lg", "Legacy", 2, "inherit", "inherit", False, {"initial": None, "stalling": [], "last": []})


NO_DEFAULTS = Defaults()


def cluster(**overrides) -> ClusterValues:
    values = {
        "compatibility_version": "4.7",
        "parallel_migrations_supported": True,
        "policy": VERY_LARGE,
        "migration_bandwidth": "auto",
        "migration_bandwidth_custom_mbps": None,
        "migration_auto_converge": "inherit",
        "migration_compressed": "inherit",
        "migration_encrypted": "inherit",
        "parallel_migrations_policy": "disabled",
        "custom_parallel_migrations": None,
    }
    return ClusterValues(**(values | overrides))


def notes(hosts=(), defaults=NO_DEFAULTS, **overrides):
    return cluster_notes(cluster(**overrides), defaults=defaults, hosts=hosts)


def messages(**overrides) -> list[str]:
    return [note.message for note in notes(**overrides)]


def codes(**overrides) -> list[str]:
    return [note.code for note in notes(**overrides)]


def host(name, address, *, link=100_000, zerocopy=True, parallel=True) -> HostValues:
    return HostValues(
        address, f"qemu+tls://{address}/system", link, zerocopy, parallel, name=name, addresses=(address,)
    )


def test_very_large_vms_with_parallel_disabled_enables_them():
    assert messages() == [
        "Zero-copy needs parallel connections, so this migration uses them (Auto Parallel) although parallel "
        "migrations are set to Disabled.",
        "Between hosts linked below 20,480 Mbit/s, at 10 Gbit/s for example: at 1250 MiB/s only 0 parallel "
        "connection(s) would be used (one per 10 Gbit/s), so this migration uses 2 connections.",
    ]
    assert codes(migration_bandwidth="custom", migration_bandwidth_custom_mbps=40_000) == ["parallel_enforced"]


def test_encryption_turns_zero_copy_off_whether_set_or_inherited():
    expected = ["This migration is encrypted and zero-copy cannot be encrypted, so it will copy memory normally."]
    assert messages(migration_encrypted="true") == expected
    assert messages(defaults=Defaults(encrypted=True)) == expected


def test_very_large_vms_kept_at_a_level_without_parallel_migrates_without_zero_copy():
    assert messages(compatibility_version="4.6", parallel_migrations_supported=False) == [
        "The migration policy Very large VMs uses zero-copy, but compatibility version 4.6 does not support "
        "parallel migrations, so this migration will copy memory normally."
    ]


def test_a_parallel_setting_at_a_level_without_parallel_is_ignored():
    assert codes(
        policy=MINIMAL,
        compatibility_version="4.6",
        parallel_migrations_supported=False,
        parallel_migrations_policy="auto",
    ) == ["parallel_unsupported_level"]


def test_compression_and_post_copy_give_way_to_parallel_migrations():
    assert codes(policy=COMPRESSING, parallel_migrations_policy="custom") == ["compression_disabled"]
    assert codes(policy=POST_COPY, parallel_migrations_policy="auto_parallel") == [
        "parallel_fallback",
        "postcopy_removed",
    ]
    assert codes(policy=LEGACY, parallel_migrations_policy="custom", migration_compressed="true") == [
        "compression_disabled",
        "hypervisor_schedule",
    ]


def test_a_decision_that_depends_on_the_link_speed_names_the_speed_where_it_changes():
    fallback, disabled = notes(policy=COMPRESSING, parallel_migrations_policy="auto")
    assert fallback.code == "parallel_fallback"
    assert fallback.message == (
        "Between hosts linked below 20,480 Mbit/s, at 10 Gbit/s for example: at 1250 MiB/s only 0 parallel "
        "connection(s) would be used (one per 10 Gbit/s), so this migration is not parallel."
    )
    assert disabled.code == "compression_disabled"
    assert disabled.message.startswith("Between hosts linked at 20,480 Mbit/s or faster, at 25 Gbit/s for example: ")
    # The speed said is where the plan really changes: one connection per 10 Gbit/s (10,240 Mbit/s).
    at = {
        speed: resolve_plan(
            vm=VMValues(vcpus=255, policy=None),
            cluster=cluster(policy=COMPRESSING, parallel_migrations_policy="auto"),
            source=host("a", "10.0.0.1", link=speed),
            destination=host("b", "10.0.0.2", link=speed),
        )
        for speed in (20_479, 20_480)
    }
    assert at[20_479].parallel_connections is None and at[20_479].compressed
    assert at[20_480].parallel_connections == 2 and not at[20_480].compressed


def test_the_automatic_count_falls_back_without_a_bandwidth_figure():
    assert messages(policy=MINIMAL, parallel_migrations_policy="auto", migration_bandwidth="hypervisor_default") == [
        "The bandwidth is the hypervisor's default, so this migration is limited to the hypervisor's default of "
        "52 MiB/s (the source host reported no cap).",
        "The number of parallel connections is worked out from the migration bandwidth, which is not known here "
        "(the hypervisor's default, or a link speed that was not reported), so this migration is not parallel.",
    ]
    assert codes(
        policy=MINIMAL,
        parallel_migrations_policy="auto_parallel",
        migration_bandwidth="custom",
        migration_bandwidth_custom_mbps=10_000,
    ) == ["parallel_fallback"]


def test_the_hosts_reports_are_said_with_the_hosts_names():
    hosts = [
        host("kvm-a", "10.0.0.1"),
        host("kvm-b", "10.0.0.2", zerocopy=None),
        host("kvm-c", "10.0.0.3", zerocopy=None),
        host("kvm-d", "10.0.0.4", link=None, parallel=False),
    ]
    said = {note.code: note.message for note in notes(hosts=hosts)}
    assert said["zerocopy_unsupported_host"] == (
        "The source host kvm-b has not reported whether it supports zero-copy, so this migration will copy "
        "memory normally. The same goes for kvm-c."
    )
    assert said["parallel_unsupported_host"] == (
        "The source host kvm-d does not support parallel migrations, so this migration is not parallel "
        "and will copy memory normally."
    )
    assert said["parallel_unsupported_destination"].startswith("The destination host kvm-d does not support")
    assert said["bandwidth_unknown_link_speed"].startswith(
        "The bandwidth is Auto, but the source host kvm-d has not reported a link speed"
    )
    # kvm-a reports everything: it is named nowhere.
    assert not any("kvm-a" in message for message in said.values())


def test_many_hosts_with_one_problem_make_one_note():
    hosts = [host(f"kvm-{n:02}", f"10.0.0.{n}", zerocopy=False) for n in range(1, 8)]
    said = {note.code: note.message for note in notes(hosts=hosts)}
    assert list(said) == [
        "parallel_enforced",
        "parallel_fallback",
        "zerocopy_unsupported_host",
        "zerocopy_unsupported_destination",
    ]
    assert said["zerocopy_unsupported_host"] == (
        "The source host kvm-01 does not support zero-copy, so this migration will copy memory normally. "
        "The same goes for kvm-02, kvm-03, kvm-04 and 3 more."
    )


def test_nothing_to_say_for_a_plain_cluster():
    assert notes(policy=MINIMAL) == []


POLICIES = [VERY_LARGE, MINIMAL, POST_COPY, COMPRESSING, LEGACY]
LEVELS = [("4.6", False), ("4.7", True)]
PARALLEL = ["disabled", "auto", "auto_parallel", "custom"]
BANDWIDTH = [("auto", None), ("hypervisor_default", None), ("custom", 1_000), ("custom", 400_000)]
TRI = ["inherit", "true", "false"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_the_notes_announce_exactly_the_decisions_of_migrations_between_capable_hosts(policy):
    """Every decision a VM that sets nothing itself can get between hosts that support everything,
    at any common link speed, is announced; and nothing is announced that no such plan decides."""
    for (level, supported), parallel, (bandwidth, mbps), encrypted, compressed, auto_converge in itertools.product(
        LEVELS, PARALLEL, BANDWIDTH, TRI, TRI, TRI
    ):
        values = cluster(
            compatibility_version=level,
            parallel_migrations_supported=supported,
            policy=policy,
            migration_bandwidth=bandwidth,
            migration_bandwidth_custom_mbps=mbps,
            migration_auto_converge=auto_converge,
            migration_compressed=compressed,
            migration_encrypted=encrypted,
            parallel_migrations_policy=parallel,
            custom_parallel_migrations=8 if parallel == "custom" else None,
        )
        decided: set[str] = set()
        for speed in COMMON_LINKS_MBPS:
            plan = resolve_plan(
                vm=VMValues(vcpus=255, policy=None),
                cluster=values,
                source=host("a", "10.0.0.1", link=speed),
                destination=host("b", "10.0.0.2", link=speed),
            )
            decided |= {decision.code for decision in plan.decisions}
        announced = [note.code for note in cluster_notes(values)]
        assert len(announced) == len(set(announced))
        assert set(announced) == decided, (level, parallel, bandwidth, mbps, encrypted, compressed, auto_converge)
