"""Every value a plan takes that the admin did not set is a decision, over the exhaustive grid.

The grid covers what the admin sets that a policy may override (auto-converge, compression, with
the global defaults behind "inherit") and each destination capability (zero-copy and parallel
migrations: supported, not supported, not reported). The rules are stated here, independently of
the resolver's code: a destination's missing support is compared with the same migration to a
destination that supports everything.
"""

import itertools
from dataclasses import replace

from migrations_app.resolver import ClusterValues, Defaults, HostValues, VMValues, resolve_plan
from tests.resolver.test_exhaustive import policies
from tests.resolver.test_rules import VLVM, codes, plan_for

TRI = ["inherit", "true", "false"]
SUPPORT = [True, False, None]
LEVELS = [("4.6", False), ("4.7", True)]
PARALLEL = [("disabled", None), ("auto", None), ("auto_parallel", None), ("custom", 8)]
SOURCE = HostValues(
    name="kvm01",
    address="10.0.0.1",
    destination_uri="qemu+tls://kvm01/system",
    addresses=("10.0.0.1",),
    link_speed_mbps=100_000,
    zerocopy_migrations=True,
    parallel_migrations=True,
)
CAPABLE_DESTINATION = replace(
    SOURCE, name="kvm02", address="10.0.0.2", destination_uri="qemu+tls://kvm02/system", addresses=("10.0.0.2",)
)


def tri(value: str, default: bool) -> bool:
    return default if value == "inherit" else value == "true"


def rule_violations(case: dict, plan: dict, capable: dict) -> list[str]:
    problems = []
    found = codes(plan)
    policy = case["policy"]
    for setting, field, code in (
        ("auto_convergence", "migration_auto_converge", "auto_converge_policy_override"),
        ("migration_compression", "migration_compressed", "compression_policy_override"),
    ):
        policy_value = getattr(policy, setting)
        overrides = "inherit" not in (policy_value, case[field]) and policy_value != case[field]
        if overrides != (code in found):
            problems.append(f"{code} {'missing' if overrides else 'without an override'}")
    for field, value, explained_by in (
        ("migration_auto_converge", plan["auto_converge"], {"auto_converge_policy_override"}),
        ("migration_compressed", plan["compressed"], {"compression_policy_override", "compression_disabled"}),
    ):
        admin_set = case[field]
        if admin_set != "inherit" and value != (admin_set == "true") and not explained_by & set(found):
            problems.append(f"{field} differs from the cluster's setting without a decision")

    dest_zc, dest_par = case["dest_zerocopy"], case["dest_parallel"]
    flags = plan["libvirt"]["flags"]
    if dest_par is False:
        if "VIR_MIGRATE_PARALLEL" in flags or plan["zerocopy"]:
            problems.append("parallel or zero-copy to a destination without parallel migrations")
        if capable["parallel_connections"] is not None and "parallel_unsupported_destination" not in found:
            problems.append("missing parallel_unsupported_destination")
    elif "parallel_unsupported_destination" in found:
        problems.append("parallel_unsupported_destination for a destination that did not say so")
    if dest_zc is False:
        if plan["zerocopy"]:
            problems.append("zero-copy to a destination without zero-copy")
        if capable["zerocopy"] and not {"zerocopy_unsupported_destination", "parallel_unsupported_destination"} & set(
            found
        ):
            problems.append("missing zerocopy_unsupported_destination")
    elif "zerocopy_unsupported_destination" in found:
        problems.append("zerocopy_unsupported_destination for a destination that did not say so")
    if dest_zc is not False and dest_par is not False and plan != capable:
        problems.append("a destination that reports no limit changed the plan")
    for decision in plan["decisions"]:
        message = decision["message"]
        if not (message[:1].isupper() and message.endswith(".")) or decision["code"] in message:
            problems.append(f"{decision['code']} is not a plain sentence: {message!r}")
        if decision["code"].endswith("_destination") and "kvm02" not in message:
            problems.append(f"{decision['code']} does not name the destination")
    return problems


def test_every_override_and_destination_capability_is_a_decision():
    cases, examples = 0, []
    for policy, (
        level,
        level_parallel,
    ), parallel, encrypted, ac, comp, default_ac, default_comp, dzc, dpar in itertools.product(
        policies(), LEVELS, PARALLEL, ["false", "true"], TRI, TRI, [False, True], [False, True], SUPPORT, SUPPORT
    ):
        cluster = ClusterValues(
            compatibility_version=level,
            parallel_migrations_supported=level_parallel,
            policy=policy,
            migration_bandwidth="auto",
            migration_bandwidth_custom_mbps=None,
            migration_auto_converge=ac,
            migration_compressed=comp,
            migration_encrypted=encrypted,
            parallel_migrations_policy=parallel[0],
            custom_parallel_migrations=parallel[1],
        )
        vm = VMValues(vcpus=16, policy=None)
        defaults = Defaults(auto_converge=default_ac, compressed=default_comp)
        destination = replace(CAPABLE_DESTINATION, zerocopy_migrations=dzc, parallel_migrations=dpar)
        plan = resolve_plan(vm=vm, cluster=cluster, source=SOURCE, destination=destination, defaults=defaults)
        capable = resolve_plan(
            vm=vm, cluster=cluster, source=SOURCE, destination=CAPABLE_DESTINATION, defaults=defaults
        ).to_dict()
        case = {
            "policy": policy,
            "migration_auto_converge": ac,
            "migration_compressed": comp,
            "default_ac": default_ac,
            "default_comp": default_comp,
            "dest_zerocopy": dzc,
            "dest_parallel": dpar,
        }
        problems = rule_violations(case, plan.to_dict(), capable)
        cases += 1
        if problems and len(examples) < 5:
            examples.append((level, parallel, encrypted, case, problems))
    assert cases == 5 * 2 * 4 * 2 * 3 * 3 * 2 * 2 * 3 * 3
    assert examples == []


def test_very_large_vms_overriding_the_cluster_says_so_in_plain_words():
    plan = plan_for(policy=VLVM, migration_compressed="true", migration_auto_converge="false")
    assert codes(plan)[:2] == ["auto_converge_policy_override", "compression_policy_override"]
    assert plan["decisions"][0]["message"] == (
        "The migration policy Very large VMs turns auto-converge on, so this migration runs with auto-converge on "
        "although the cluster's setting is off."
    )


def test_a_source_that_never_reported_is_named_in_the_decision():
    plan = resolve_plan(
        vm=VMValues(vcpus=16, policy=None),
        cluster=replace(
            ClusterValues(
                compatibility_version="4.7",
                parallel_migrations_supported=True,
                policy=VLVM,
                migration_bandwidth="auto",
                migration_bandwidth_custom_mbps=None,
                migration_auto_converge="inherit",
                migration_compressed="inherit",
                migration_encrypted="false",
                parallel_migrations_policy="auto_parallel",
                custom_parallel_migrations=None,
            )
        ),
        source=replace(SOURCE, zerocopy_migrations=None),
        destination=CAPABLE_DESTINATION,
    )
    messages = {d.code: d.message for d in plan.decisions}
    assert messages["zerocopy_unsupported_host"] == (
        "The source host kvm01 has not reported whether it supports zero-copy, so this migration will copy memory "
        "normally."
    )


def test_a_destination_without_parallel_gets_neither_parallel_nor_zerocopy():
    plan = resolve_plan(
        vm=VMValues(vcpus=16, policy=VLVM),
        cluster=ClusterValues("4.7", True, VLVM, "auto", None, "inherit", "inherit", "false", "auto_parallel", None),
        source=SOURCE,
        destination=replace(CAPABLE_DESTINATION, parallel_migrations=False),
    ).to_dict()
    assert plan["zerocopy"] is False and plan["parallel_connections"] is None
    assert plan["decisions"][-1] == {
        "code": "parallel_unsupported_destination",
        "message": "The destination host kvm02 does not support parallel migrations, so this migration is not "
        "parallel and will copy memory normally.",
    }
