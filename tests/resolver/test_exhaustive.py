"""The resolver over the whole finite option space: every invariant and seed rule, 0 violations.

This runs without the database, on the built-ins' values as the data migration stores them.
"""

import importlib
import itertools

import pytest

from migrations_app.resolver import (
    ClusterValues,
    Defaults,
    HostValues,
    PolicyValues,
    VMValues,
    invariant_violations,
    resolve_plan,
)

BUILTINS = importlib.import_module("policies.migrations.0002_builtin_policies").BUILTINS

LEVELS = {"4.2": False, "4.3": False, "4.4": False, "4.5": False, "4.6": False, "4.7": True, "4.8": True}
CLUSTER_PARALLEL = [("disabled", None), ("auto", None), ("auto_parallel", None), ("custom", 8)]
VM_PARALLEL = [("inherit", None), ("disabled", None), ("custom", 4)]
TRI = ["inherit", "true", "false"]
HOST_SUPPORT = [True, False, None]
BANDWIDTH = [("custom", 100_000), ("custom", 10_000), ("hypervisor_default", None), ("auto", None)]
KNOWN_CODES = {
    "parallel_enforced",
    "zerocopy_disabled_encryption",
    "zerocopy_unsupported_host",
    "parallel_unsupported_host",
    "parallel_unsupported_level",
    "zerocopy_unsupported_level",
    "compression_disabled",
    "postcopy_removed",
    "postcopy_removed_paused",
    "parallel_fallback",
    "compression_policy_override",
    "auto_converge_policy_override",
    "zerocopy_unsupported_destination",
    "parallel_unsupported_destination",
    "hypervisor_schedule",
    "bandwidth_hypervisor_default",
    "bandwidth_unknown_link_speed",
    "encryption_unsupported_level",
    "zerocopy_memtune_limit",
    "memtune_limit_not_enforced",
}


def policies() -> list[PolicyValues]:
    return [
        PolicyValues(
            id=p["id"],
            name=p["name"],
            max_migrations=p["max_migrations"],
            auto_convergence=p["auto_convergence"],
            migration_compression=p["migration_compression"],
            zerocopy=p["zerocopy"],
            convergence=p["convergence"],
        )
        for p in BUILTINS
    ]


def seed_rule_violations(case: dict, plan: dict) -> list[str]:
    """The seed's rules, stated independently of the resolver's code."""
    problems = []
    codes = [d["code"] for d in plan["decisions"]]
    policy = case["policy"]
    level_parallel = LEVELS[case["level"]]
    encrypted = case["vm_encrypted"] == "true" or (
        case["vm_encrypted"] == "inherit" and case["cluster_encrypted"] == "true"
    )
    encrypted = encrypted and case["level"] not in ("4.2", "4.3")  # no migration encryption before 4.4
    wants_zerocopy = policy.zerocopy and level_parallel and not encrypted
    host_can = case["host_zerocopy"] is True and case["host_parallel"] is not False
    if plan["zerocopy"] != (wants_zerocopy and host_can):
        problems.append("zerocopy is not (policy and level and not encrypted and host support)")
    if encrypted != plan["encrypted"] or (encrypted and "tls.destination" not in plan["libvirt"]["params"]):
        problems.append("encryption does not give TLS and tls.destination")
    if policy.zerocopy and level_parallel and encrypted and "zerocopy_disabled_encryption" not in codes:
        problems.append("missing zerocopy_disabled_encryption")
    if wants_zerocopy and case["host_zerocopy"] is not True and "zerocopy_unsupported_host" not in codes:
        problems.append("missing zerocopy_unsupported_host")
    if policy.zerocopy and not level_parallel and "zerocopy_unsupported_level" not in codes:
        problems.append("missing zerocopy_unsupported_level")
    effective = case["vm_parallel"][0] if case["vm_parallel"][0] != "inherit" else case["cluster_parallel"][0]
    if wants_zerocopy and effective in ("disabled", "auto"):
        if "parallel_enforced" not in codes:
            problems.append("missing parallel_enforced")
        if case["host_parallel"] is not False and (plan["parallel_connections"] or 0) < 2:
            problems.append("zero-copy enforced parallel connections but the plan has none")
    if not level_parallel and plan["parallel_connections"] is not None:
        problems.append("parallel connections at a level without parallel migrations")
    if case["host_parallel"] is False and "VIR_MIGRATE_PARALLEL" in plan["libvirt"]["flags"]:
        problems.append("PARALLEL on a host that reports no parallel migrations")
    if plan["parallel_connections"] is not None and plan["compressed"]:
        problems.append("compressed parallel migration")
    if set(codes) - KNOWN_CODES:
        problems.append(f"unknown decision codes {set(codes) - KNOWN_CODES}")
    if len(codes) != len(set(codes)):
        problems.append("a decision is reported twice")
    return problems


def test_every_combination_obeys_the_invariants_and_the_seed_rules():
    cases = violations = 0
    examples = []
    for (
        policy,
        (level, level_parallel),
        cluster_parallel,
        vm_parallel,
        cluster_encrypted,
        vm_encrypted,
        compressed,
        host_zerocopy,
        host_parallel,
        bandwidth,
    ) in itertools.product(
        policies(), LEVELS.items(), CLUSTER_PARALLEL, VM_PARALLEL, TRI, TRI, TRI, HOST_SUPPORT, HOST_SUPPORT, BANDWIDTH
    ):
        cluster = ClusterValues(
            compatibility_version=level,
            parallel_migrations_supported=level_parallel,
            policy=policy,
            migration_bandwidth=bandwidth[0],
            migration_bandwidth_custom_mbps=bandwidth[1],
            migration_auto_converge="inherit",
            migration_compressed=compressed,
            migration_encrypted=cluster_encrypted,
            parallel_migrations_policy=cluster_parallel[0],
            custom_parallel_migrations=cluster_parallel[1],
        )
        vm = VMValues(
            vcpus=16,
            policy=None,
            parallel_migrations_policy=vm_parallel[0],
            custom_parallel_migrations=vm_parallel[1],
            migration_encrypted=vm_encrypted,
        )
        source = HostValues(
            address="10.0.0.1",
            destination_uri="qemu+tls://a/system",
            link_speed_mbps=25_000,
            zerocopy_migrations=host_zerocopy,
            parallel_migrations=host_parallel,
        )
        destination = HostValues(
            address="10.0.0.2", destination_uri="qemu+tls://10.0.0.2/system", link_speed_mbps=40_000
        )
        plan = resolve_plan(vm=vm, cluster=cluster, source=source, destination=destination, defaults=Defaults())
        as_json = plan.to_dict()
        case = {
            "policy": policy,
            "level": level,
            "cluster_parallel": cluster_parallel,
            "vm_parallel": vm_parallel,
            "cluster_encrypted": cluster_encrypted,
            "vm_encrypted": vm_encrypted,
            "host_zerocopy": host_zerocopy,
            "host_parallel": host_parallel,
        }
        problems = invariant_violations(as_json) + seed_rule_violations(case, as_json)
        cases += 1
        if problems:
            violations += 1
            if len(examples) < 5:
                examples.append((case, problems))
    print(f"\nresolver cases checked: {cases}, violations: {violations}")
    assert cases == 5 * 7 * 4 * 3 * 3 * 3 * 3 * 3 * 3 * 4
    assert violations == 0, examples


@pytest.mark.parametrize("broken", ["zerocopy-without-parallel", "zerocopy-with-tls", "parallel-tunnelled"])
def test_the_invariant_check_catches_broken_plans(broken):
    plan = {
        "zerocopy": True,
        "encrypted": False,
        "parallel_connections": 2,
        "incoming_limit": 1,
        "outgoing_limit": 1,
        "post_copy": False,
        "libvirt": {
            "flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"],
            "params": {"parallel.connections": 2},
        },
    }
    assert invariant_violations(plan) == []
    flags = plan["libvirt"]["flags"]
    if broken == "zerocopy-without-parallel":
        flags.remove("VIR_MIGRATE_PARALLEL")
    elif broken == "zerocopy-with-tls":
        flags.append("VIR_MIGRATE_TLS")
    else:
        flags.append("VIR_MIGRATE_TUNNELLED")
    assert invariant_violations(plan)
