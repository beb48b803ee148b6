"""migrations_app.notes: the plain-English notes of the cluster form, checked against the resolver itself."""

import itertools

import pytest

from migrations_app.notes import cluster_notes
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


def notes(**overrides):
    values = {
        "policy": VERY_LARGE,
        "level": "4.7",
        "parallel_supported": True,
        "parallel": "disabled",
        "bandwidth": "auto",
        "bandwidth_custom_mbps": None,
        "encrypted": "inherit",
        "compressed": "inherit",
    }
    return cluster_notes(**(values | overrides))


def messages(**overrides) -> list[str]:
    return [note.message for note in notes(**overrides)]


def test_very_large_vms_with_parallel_disabled_enables_them():
    assert messages() == ["Parallel migrations are disabled: they will be enabled automatically for this policy."]


def test_encryption_turns_zero_copy_off():
    assert messages(encrypted="true") == ["Encryption is on: zero-copy will not be used."]
    assert messages(encrypted="inherit", defaults=Defaults(encrypted=True)) == [
        "Encryption is on (the global default): zero-copy will not be used."
    ]


def test_very_large_vms_kept_at_a_level_without_parallel_migrates_without_zero_copy():
    assert messages(level="4.6", parallel_supported=False) == [
        "Compatibility version 4.6 does not support parallel migrations: Very large VMs will migrate without zero-copy."
    ]


def test_a_parallel_setting_at_a_level_without_parallel_is_ignored():
    assert [n.code for n in notes(policy=MINIMAL, level="4.6", parallel_supported=False, parallel="auto")] == [
        "parallel_unsupported_level"
    ]


def test_compression_and_post_copy_give_way_to_parallel_migrations():
    assert [n.code for n in notes(policy=COMPRESSING, parallel="custom")] == ["compression_disabled"]
    assert [n.code for n in notes(policy=POST_COPY, parallel="auto_parallel")] == ["postcopy_removed"]
    assert [n.code for n in notes(policy=LEGACY, parallel="custom", compressed="true")] == [
        "compression_disabled",
        "hypervisor_schedule",
    ]


def test_auto_with_an_automatic_bandwidth_is_said_with_when():
    [note] = notes(policy=COMPRESSING, parallel="auto")
    assert note.code == "compression_disabled" and note.message.endswith("when a migration runs in parallel.")


def test_the_automatic_count_falls_back_without_a_bandwidth_figure():
    assert messages(policy=MINIMAL, parallel="auto", bandwidth="hypervisor_default") == [
        "Bandwidth is the hypervisor default: each migration is limited to its source host's own cap "
        "(52 MiB/s where the host reports none).",
        "Bandwidth is the hypervisor default, so the number of parallel connections cannot be derived: "
        "the migration is not parallel.",
    ]
    assert [
        n.code
        for n in notes(policy=MINIMAL, parallel="auto_parallel", bandwidth="custom", bandwidth_custom_mbps=10_000)
    ] == ["parallel_fallback"]


def test_hosts_that_cannot_do_zero_copy_are_named():
    [enforced, host] = notes(hosts_without_zerocopy=("kvm-b",))
    assert enforced.code == "parallel_enforced"
    assert host.message == "Host kvm-b has not reported zero-copy support: migrations from there run without zero-copy."


def test_nothing_to_say_for_a_plain_cluster():
    assert notes(policy=MINIMAL) == []


POLICIES = [VERY_LARGE, MINIMAL, POST_COPY, COMPRESSING, LEGACY]
LEVELS = [("4.6", False), ("4.7", True)]
PARALLEL = ["disabled", "auto", "auto_parallel", "custom"]
BANDWIDTH = [("hypervisor_default", None), ("custom", 1_000), ("custom", 400_000)]
TRI = ["inherit", "true", "false"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_the_notes_name_exactly_the_decisions_the_resolver_makes(policy):
    """Where the outcome does not depend on the hosts' link speed, notes and plan agree code for code."""
    host = HostValues("10.0.0.1", "qemu+tls://10.0.0.1/system", 100_000, True, True)
    for (level, supported), parallel, (bandwidth, mbps), encrypted, compressed, auto_converge in itertools.product(
        LEVELS, PARALLEL, BANDWIDTH, TRI, TRI, TRI
    ):
        cluster = ClusterValues(
            level,
            supported,
            policy,
            bandwidth,
            mbps,
            auto_converge,
            compressed,
            encrypted,
            parallel,
            8 if parallel == "custom" else None,
        )
        plan = resolve_plan(vm=VMValues(vcpus=255, policy=None), cluster=cluster, source=host, destination=host)
        expected = [decision.code for decision in plan.decisions]
        got = [
            note.code
            for note in notes(
                policy=policy,
                level=level,
                parallel_supported=supported,
                parallel=parallel,
                bandwidth=bandwidth,
                bandwidth_custom_mbps=mbps,
                encrypted=encrypted,
                compressed=compressed,
                auto_converge=auto_converge,
            )
        ]
        assert got == expected, (level, parallel, bandwidth, mbps, encrypted, compressed, auto_converge)
