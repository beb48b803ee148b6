"""An independent oracle for the resolver: oVirt's rules written down as an executable
specification, compared with resolve_plan field by field over a grid of every input.

The specification comes from oVirt's engine and Vdsm as the project's reference describes them
(the feature page, the policies, the engine's arithmetic, the flags Vdsm sends) and from Ferry's
contract. It imports nothing of the resolver's logic: only the value types it is called with and
the function under test. Where the two disagree, one of them is wrong, and the case says which
input showed it.
"""

from __future__ import annotations

import importlib
import itertools
import random
from typing import Any

from migrations_app.resolver import ClusterValues, Defaults, HostValues, PolicyValues, VMValues, resolve_plan

BUILTINS = [
    PolicyValues(
        id=p["id"],
        name=p["name"],
        max_migrations=p["max_migrations"],
        auto_convergence=p["auto_convergence"],
        migration_compression=p["migration_compression"],
        zerocopy=p["zerocopy"],
        convergence=p["convergence"],
    )
    for p in importlib.import_module("policies.migrations.0002_builtin_policies").BUILTINS
]
# A custom policy that compresses and never converges itself, to vary what the built-ins fix.
CUSTOM = PolicyValues(
    id="11111111-1111-1111-1111-111111111111",
    name="Custom",
    max_migrations=3,
    auto_convergence="false",
    migration_compression="true",
    zerocopy=False,
    convergence={"initial": 250, "stalling": [{"limit": 2, "action": {"name": "postcopy", "params": []}}], "last": []},
)
POLICIES = [*BUILTINS, CUSTOM]

# ------------------------------------------------------------------ the specification
VDSM_DEFAULT_BANDWIDTH = 52  # MiB/s: Vdsm's migration_max_bandwidth
GBIT_PER_CONNECTION = 10  # the engine: one automatic connection per 10 Gbit/s (10240 Mbit/s)
VDSM_LEGACY_SCHEDULE = {
    "init": [("setDowntime", ["101"])],
    "stalling": [(1, "setDowntime", ["104"]), (2, "setDowntime", ["120"]), (3, "setDowntime", ["189"]),
                 (4, "setDowntime", ["500"]), (42, "setDowntime", ["500"]), (-1, "abort", [])],
}  # fmt: skip


def tri(value: str, inherited: bool) -> bool:
    return {"true": True, "false": False}.get(value, inherited)


def expected_plan(vm: VMValues, cluster: ClusterValues, src: HostValues, dst: HostValues, d: Defaults) -> dict:
    """What oVirt's engine and Vdsm would send for these inputs, and the decisions Ferry must name."""
    codes: set[str] = set()
    policy = vm.policy or cluster.policy
    major_minor = tuple(int(x) for x in cluster.compatibility_version.split("."))

    # Encryption: the VM's setting over the cluster's over the default; none before 4.4.
    encrypted = tri(vm.migration_encrypted, tri(cluster.migration_encrypted, d.encrypted))
    if encrypted and major_minor < (4, 4):
        encrypted = False
        codes.add("encryption_unsupported_level")

    # The policy's own auto-converge and compression win over the cluster's.
    auto_converge = tri(policy.auto_convergence, tri(cluster.migration_auto_converge, d.auto_converge))
    pair = (policy.auto_convergence, cluster.migration_auto_converge)
    if "inherit" not in pair and pair[0] != pair[1]:
        codes.add("auto_converge_policy_override")
    compressed = tri(policy.migration_compression, tri(cluster.migration_compressed, d.compressed))
    pair = (policy.migration_compression, cluster.migration_compressed)
    if "inherit" not in pair and pair[0] != pair[1]:
        codes.add("compression_policy_override")

    # Parallel migrations: the VM's setting over the cluster's; only where the level has them.
    if vm.parallel_migrations_policy != "inherit":
        mode, count = vm.parallel_migrations_policy, vm.custom_parallel_migrations
    else:
        mode, count = cluster.parallel_migrations_policy, cluster.custom_parallel_migrations
    if mode != "disabled" and not cluster.parallel_migrations_supported:
        codes.add("parallel_unsupported_level")
        mode = "disabled"

    # Zero-copy (Very large VMs): needs parallel connections, excludes encryption, needs the hosts.
    zerocopy = False
    if policy.zerocopy:
        if not cluster.parallel_migrations_supported:
            codes.add("zerocopy_unsupported_level")
        elif encrypted:
            codes.add("zerocopy_disabled_encryption")
        else:
            zerocopy = True
            if mode in ("disabled", "auto"):
                codes.add("parallel_enforced")
                mode = "auto_parallel"
    if zerocopy and src.zerocopy_migrations is not True:
        codes.add("zerocopy_unsupported_host")  # the API mismatch; enforced parallelism stays
        zerocopy = False
    if zerocopy and dst.zerocopy_migrations is False:
        codes.add("zerocopy_unsupported_destination")
        zerocopy = False
    if mode != "disabled" and src.parallel_migrations is False:
        codes.add("parallel_unsupported_host")
        mode, zerocopy = "disabled", False
    if mode != "disabled" and dst.parallel_migrations is False:
        codes.add("parallel_unsupported_destination")
        mode, zerocopy = "disabled", False
    # Zero-copy pins the guest's RAM as it sends it, and libvirt lets QEMU lock no more than a
    # declared <memtune><hard_limit>: the limit must cover the RAM plus 1 GiB for QEMU, unless the
    # source host says QEMU is not held to its locked-memory limit (it holds CAP_IPC_LOCK).
    limit = vm.memtune_hard_limit_mib
    if zerocopy and limit is not None and vm.memory_mib is not None and limit < vm.memory_mib + 1024:
        if src.memlock_enforced is False:
            codes.add("memtune_limit_not_enforced")
        else:
            codes.add("zerocopy_memtune_limit")
            zerocopy = False

    # The engine's bandwidth (MiB/s): custom Mbit/s / 8, or auto = the slower link, both known.
    figure = None
    if cluster.migration_bandwidth == "custom" and cluster.migration_bandwidth_custom_mbps:
        figure = cluster.migration_bandwidth_custom_mbps // 8
    elif cluster.migration_bandwidth == "auto" and src.link_speed_mbps and dst.link_speed_mbps:
        figure = min(src.link_speed_mbps, dst.link_speed_mbps) // 8
    if figure is not None:
        # Shared by the migrations the CLUSTER's policy runs at once (the engine's rule).
        bandwidth = max(1, figure // cluster.policy.max_migrations)
    else:
        # Vdsm always sends one: its own configured cap.
        bandwidth = src.max_bandwidth_mib_s or VDSM_DEFAULT_BANDWIDTH
        codes.add(
            "bandwidth_unknown_link_speed" if cluster.migration_bandwidth == "auto" else "bandwidth_hypervisor_default"
        )

    # Connections: custom (at most one per vCPU, at least 2, at most 255), or automatic from the
    # cluster's figure BEFORE it is shared: min(Gbit/s / 10, vCPUs), falling back below 2.
    connections = None
    if mode == "custom":
        connections = min(count, max(2, vm.vcpus), 255)
    elif mode in ("auto", "auto_parallel"):
        automatic = min(figure * 8 // (GBIT_PER_CONNECTION * 1024), vm.vcpus) if figure else None
        if automatic is not None and automatic >= 2:
            connections = min(automatic, 255)
        else:
            codes.add("parallel_fallback")
            connections = 2 if mode == "auto_parallel" else None
    parallel = connections is not None

    # The schedule: the policy's, or Vdsm's own for a policy without one; no post-copy in parallel.
    conv = policy.convergence
    if not (conv.get("initial") or conv.get("stalling") or conv.get("last")):
        codes.add("hypervisor_schedule")
        init = [{"name": n, "params": p} for n, p in VDSM_LEGACY_SCHEDULE["init"]]
        stalling = [
            {"limit": lim, "action": {"name": n, "params": p}} for lim, n, p in VDSM_LEGACY_SCHEDULE["stalling"]
        ]
    else:
        init = [{"name": "setDowntime", "params": [str(conv["initial"])]}] if conv.get("initial") else []
        stalling = [{"limit": s["limit"], "action": s["action"]} for s in conv.get("stalling", [])]
        stalling += [{"limit": -1, "action": a} for a in conv.get("last", [])]
    if parallel:
        if compressed:
            codes.add("compression_disabled")
            compressed = False
        if any(s["action"]["name"] == "postcopy" for s in stalling):
            codes.add("postcopy_removed")
            stalling = [s for s in stalling if s["action"]["name"] != "postcopy"]
    # oVirt never switches a paused VM to post-copy: its post-copy steps are left out too.
    if vm.paused and any(s["action"]["name"] == "postcopy" for s in stalling):
        codes.add("postcopy_removed_paused")
        stalling = [s for s in stalling if s["action"]["name"] != "postcopy"]
    post_copy = any(s["action"]["name"] == "postcopy" for s in stalling)

    flags = {"VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_ABORT_ON_ERROR", "VIR_MIGRATE_PERSIST_DEST",
             "VIR_MIGRATE_UNDEFINE_SOURCE"}  # fmt: skip
    flags |= {f for f, on in (("VIR_MIGRATE_AUTO_CONVERGE", auto_converge), ("VIR_MIGRATE_COMPRESSED", compressed),
              ("VIR_MIGRATE_TLS", encrypted), ("VIR_MIGRATE_POSTCOPY", post_copy),
              ("VIR_MIGRATE_PARALLEL", parallel), ("VIR_MIGRATE_ZEROCOPY", zerocopy)) if on}  # fmt: skip
    # Guest memory goes only to an address the destination owns: its control connection's host, or
    # one its own agent reported; otherwise its libvirtd chooses. TLS checks the management name.
    params: dict[str, Any] = {"bandwidth": bandwidth}
    control_host = dst.destination_uri.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    if dst.address in (control_host, *dst.addresses):
        params["migrate_uri"] = f"tcp://{dst.address}"
        if encrypted:
            params["tls.destination"] = control_host
    else:
        codes.add("migration_address_unverified")
    if parallel:
        params["parallel.connections"] = connections
    limit = 1 if parallel else policy.max_migrations
    # Vdsm has no total time limit: one the source's agent sets is named.
    if src.migration_timeout_s:
        codes.add("migration_time_limit")
    return {
        "policy": {"id": str(policy.id), "name": policy.name},
        "zerocopy": zerocopy,
        "parallel_connections": connections,
        "encrypted": encrypted,
        "compressed": compressed,
        "auto_converge": auto_converge,
        "post_copy": post_copy,
        "max_bandwidth_mib_s": bandwidth,
        "incoming_limit": limit,
        "outgoing_limit": limit,
        "convergence_schedule": {"init": init, "stalling": stalling},
        "flags": flags,
        "params": params,
        "codes": codes,
    }


# ------------------------------------------------------------------ the grid
LEVELS = [("4.2", False), ("4.3", False), ("4.6", False), ("4.7", True), ("4.8", True), ("4.6", True), ("4.7", False)]
TRI = ["inherit", "true", "false"]
PARALLEL = [("disabled", None), ("auto", None), ("auto_parallel", None), ("custom", 4), ("custom", 64)]
VM_PARALLEL = [("inherit", None), ("disabled", None), ("auto", None), ("custom", 8)]
BANDWIDTH = [("auto", None), ("hypervisor_default", None), ("custom", 1_000), ("custom", 25_000), ("custom", 400_000)]
VCPUS = [1, 2, 8, 64, 512]
SUPPORT = [True, False, None]
LINKS = [None, 10_000, 100_000]
CAPS = [None, 300]
DESTINATIONS = [  # (address, control URI, reported addresses): owned by control, owned by report, not owned
    ("10.0.0.2", "qemu+tls://10.0.0.2:16514/system", ()),
    ("10.0.0.2", "qemu+tls://dst.example/system", ("192.168.0.2", "10.0.0.2")),
    ("10.9.9.9", "qemu+tls://dst.example/system", ("10.0.0.2",)),
]
DEFAULTS = [Defaults(), Defaults(auto_converge=True, compressed=True, encrypted=True)]
PAUSED = [False, True]  # the VM's state: a paused VM migrates without post-copy
# (memory MiB, memtune hard limit MiB): none, the lab's tiny one, exactly enough, 1 MiB short, huge VM
MEMTUNE = [(4096, None), (512, 8), (4096, 5120), (4096, 5119), (6 * 1024 * 1024, 6 * 1024 * 1024), (None, 8)]
MEMLOCK = [None, True, False]  # the source host: QEMU held to its locked-memory limit, or not
# The source agent's limits (pulse, stall watchdog, total): not reported, Vdsm's defaults, a test's
LIMITS = [None, (10.0, 600.0, None), (0.5, None, 3600.0)]
GRID = [
    POLICIES, LEVELS, TRI, TRI, TRI, PARALLEL, BANDWIDTH, VCPUS, [None, *POLICIES], VM_PARALLEL, TRI,
    SUPPORT, SUPPORT, LINKS, CAPS, SUPPORT, SUPPORT, LINKS, DESTINATIONS, DEFAULTS, PAUSED, MEMTUNE, MEMLOCK,
    LIMITS,
]  # fmt: skip
CASES = 60_000


def build(values):
    (policy, (level, supported), ac, comp, enc, (par, count), (bw, mbps), vcpus, vm_policy, (vm_par, vm_count),
     vm_enc, s_zc, s_par, s_link, s_cap, d_zc, d_par, d_link, d_where, defaults, paused, (memory, limit),
     s_memlock, s_limits) = values  # fmt: skip
    d_addr, d_uri, d_reported = d_where
    cluster = ClusterValues(level, supported, policy, bw, mbps, ac, comp, enc, par, count)
    vm = VMValues(vcpus, vm_policy, vm_par, vm_count, vm_enc, paused, memory, limit, "vm")
    pulse, stall, total = s_limits or (None, None, None)
    source = HostValues(
        "10.0.0.1", "qemu+tls://src.example/system", s_link, s_zc, s_par, "src", s_cap, (), s_memlock,
        migration_pulse_s=pulse, migration_stall_s=stall, migration_timeout_s=total,
    )  # fmt: skip
    destination = HostValues(d_addr, d_uri, d_link, d_zc, d_par, "dst", None, d_reported)
    return vm, cluster, source, destination, defaults


def cases():
    """Every value of every input appears; the combinations are a seeded sample of the full grid."""
    rng = random.Random(20261130)
    longest = max(len(axis) for axis in GRID)
    for i in range(longest):  # each value of each axis at least once
        yield tuple(axis[i % len(axis)] for axis in GRID)
    for _ in range(CASES - longest):
        yield tuple(rng.choice(axis) for axis in GRID)


PLAN_FIELDS = (
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
)


def compare(inputs) -> list[str]:
    vm, cluster, source, destination, defaults = inputs
    got = resolve_plan(vm=vm, cluster=cluster, source=source, destination=destination, defaults=defaults).to_dict()
    want = expected_plan(vm, cluster, source, destination, defaults)
    problems = []
    for key in PLAN_FIELDS:
        if got[key] != want[key]:
            problems.append(f"{key}: resolver {got[key]!r}, oracle {want[key]!r}")
    if set(got["libvirt"]["flags"]) != want["flags"]:
        problems.append(f"flags: resolver {sorted(got['libvirt']['flags'])}, oracle {sorted(want['flags'])}")
    if got["libvirt"]["params"] != want["params"]:
        problems.append(f"params: resolver {got['libvirt']['params']}, oracle {want['params']}")
    if got["libvirt"]["destination_uri"] != destination.destination_uri:
        problems.append("destination_uri")
    got_codes = [d["code"] for d in got["decisions"]]
    if set(got_codes) != want["codes"] or len(got_codes) != len(set(got_codes)):
        problems.append(f"decisions: resolver {got_codes}, oracle {sorted(want['codes'])}")
    return problems


def test_the_resolver_agrees_with_the_specification_on_every_field():
    checked, failures = 0, []
    for values in cases():
        checked += 1
        problems = compare(build(values))
        if problems and len(failures) < 5:
            failures.append((values, problems))
    print(f"\noracle: {checked} cases compared field by field")
    assert checked == CASES
    assert not failures, "\n".join(f"{v}\n  {p}" for v, p in failures)


def test_the_grid_reaches_every_outcome():
    """The sample is not blind: it reaches zero-copy, every fallback and every decision code."""
    seen: set[str] = set()
    outcomes = set()
    for values in itertools.islice(cases(), 20_000):
        vm, cluster, source, destination, defaults = build(values)
        want = expected_plan(vm, cluster, source, destination, defaults)
        seen |= want["codes"]
        parallel = want["parallel_connections"] is not None
        outcomes.add((want["zerocopy"], parallel, want["encrypted"], want["post_copy"]))
    from migrations_app.resolver import DECISION_REASONS, PLACEMENT_DECISIONS

    assert seen == set(DECISION_REASONS) - PLACEMENT_DECISIONS, set(DECISION_REASONS) ^ seen
    assert (True, True, False, False) in outcomes and (False, False, True, True) in outcomes
