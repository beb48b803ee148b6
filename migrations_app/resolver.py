"""The migration resolver: (VM, cluster, policy, hosts) -> the exact libvirt migration plan.

A pure function over plain values. The UI, the API, admin and the host tasks all call it, so
what an admin previews is what libvirt receives. Every option it resolves silently is reported
as a decision with a stable code; the migration always proceeds with whatever resulted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from policies.convergence import has_postcopy, has_schedule, plan_schedule

MAX_CONNECTIONS = 255  # QEMU takes an 8-bit multifd channel count
MBIT_PER_CONNECTION = 10_240  # one automatic connection per 10 Gbit/s
#: What zero-copy must be allowed to lock beyond the guest's RAM: QEMU's own pinned buffers. The
#: margin libvirt itself allows when a guest's whole RAM must be locked (VFIO): 1 GiB.
ZEROCOPY_LOCK_OVERHEAD_MIB = 1024
#: Vdsm's migration_max_bandwidth: a host's own cap when the engine sends no figure.
HYPERVISOR_BANDWIDTH_MIB_S = 52
BASE_FLAGS = (
    "VIR_MIGRATE_LIVE",
    "VIR_MIGRATE_PEER2PEER",
    "VIR_MIGRATE_ABORT_ON_ERROR",  # oVirt's engine always asks for it: an I/O error ends the migration
    "VIR_MIGRATE_PERSIST_DEST",
    "VIR_MIGRATE_UNDEFINE_SOURCE",
)

INHERIT, TRUE = "inherit", "true"
#: Migration encryption exists from this compatibility version on; below it the engine sends none.
ENCRYPTION_MIN_LEVEL = (4, 4)
DISABLED, AUTO, AUTO_PARALLEL, CUSTOM = "disabled", "auto", "auto_parallel", "custom"


@dataclass(frozen=True)
class PolicyValues:
    id: str
    name: str
    max_migrations: int
    auto_convergence: str  # inherit | true | false
    migration_compression: str
    zerocopy: bool
    convergence: dict[str, Any]


@dataclass(frozen=True)
class ClusterValues:
    compatibility_version: str
    parallel_migrations_supported: bool
    policy: PolicyValues
    migration_bandwidth: str  # auto | hypervisor_default | custom
    migration_bandwidth_custom_mbps: int | None
    migration_auto_converge: str
    migration_compressed: str
    migration_encrypted: str
    parallel_migrations_policy: str
    custom_parallel_migrations: int | None


@dataclass(frozen=True)
class VMValues:
    vcpus: int
    policy: PolicyValues | None  # None: the cluster's policy
    parallel_migrations_policy: str = INHERIT
    custom_parallel_migrations: int | None = None
    migration_encrypted: str = INHERIT
    paused: bool = False  # a paused VM migrates without post-copy, as oVirt does
    memory_mib: int | None = None
    memtune_hard_limit_mib: int | None = None  # <memtune><hard_limit> as its host's agent found it
    name: str = ""  # for the decisions' wording only


@dataclass(frozen=True)
class HostValues:
    address: str
    destination_uri: str
    link_speed_mbps: int | None = None
    zerocopy_migrations: bool | None = None  # None: not reported yet
    parallel_migrations: bool | None = None
    name: str = ""  # for the decisions' wording only
    max_bandwidth_mib_s: int | None = None  # the host's own configured cap, as its agent reported it
    addresses: tuple[str, ...] = ()  # the addresses the host's own agent reported
    memlock_enforced: bool | None = None  # QEMU held to its locked-memory limit; None: not reported
    # The limits the host's agent holds a migration to (seconds; None: none). pulse_s None: not reported.
    migration_pulse_s: float | None = None
    migration_stall_s: float | None = None
    migration_timeout_s: float | None = None


@dataclass(frozen=True)
class Defaults:
    auto_converge: bool = False
    compressed: bool = False
    encrypted: bool = False


@dataclass(frozen=True)
class Decision:
    code: str
    message: str


@dataclass
class Plan:
    policy: dict[str, str]
    zerocopy: bool
    parallel_connections: int | None
    encrypted: bool
    compressed: bool
    auto_converge: bool
    post_copy: bool
    max_bandwidth_mib_s: int | None
    incoming_limit: int
    outgoing_limit: int
    convergence_schedule: dict[str, list]
    destination_uri: str
    flags: list[str]
    params: dict[str, Any]
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": dict(self.policy),
            "zerocopy": self.zerocopy,
            "parallel_connections": self.parallel_connections,
            "encrypted": self.encrypted,
            "compressed": self.compressed,
            "auto_converge": self.auto_converge,
            "post_copy": self.post_copy,
            "max_bandwidth_mib_s": self.max_bandwidth_mib_s,
            "incoming_limit": self.incoming_limit,
            "outgoing_limit": self.outgoing_limit,
            "convergence_schedule": self.convergence_schedule,
            "libvirt": {
                "destination_uri": self.destination_uri,
                "flags": list(self.flags),
                "params": dict(self.params),
            },
            "decisions": [{"code": d.code, "message": d.message} for d in self.decisions],
        }


def tri_state(value: str, inherited: bool) -> bool:
    """A cluster/VM tri-state option ("inherit" | "true" | "false") as on or off."""
    return inherited if value == INHERIT else value == TRUE


def level_tuple(level: str) -> tuple[int, ...]:
    """ "4.7" -> (4, 7); a level that is not numbers sorts last."""
    try:
        return tuple(int(part) for part in level.split("."))
    except ValueError:
        return (999,)


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _cluster_bandwidth_mib_s(cluster: ClusterValues, source: HostValues, destination: HostValues) -> int | None:
    """The engine's figure for the cluster in MiB/s, before it is shared between migrations, or
    None when there is none (the hypervisor's default, or a link speed not known on both hosts)."""
    if cluster.migration_bandwidth == CUSTOM:
        mbps = cluster.migration_bandwidth_custom_mbps
    elif cluster.migration_bandwidth == AUTO:
        speeds = [s for s in (source.link_speed_mbps, destination.link_speed_mbps) if s]
        mbps = min(speeds) if len(speeds) == 2 else None
    else:
        mbps = None
    return mbps // 8 if mbps else None


def uri_host(uri: str) -> str | None:
    """The host a libvirt URI names (qemu+tls://host:port/system -> host), or None for a local one."""
    try:
        return urlsplit(uri).hostname
    except ValueError:
        return None


PARALLEL_LABELS = {DISABLED: "Disabled", AUTO: "Auto", AUTO_PARALLEL: "Auto Parallel", CUSTOM: "Custom"}
NORMAL_COPY = "will copy memory normally"


# Each decision as the reason a group of migrations turns out as it does ("..., because <reason>").
DECISION_REASONS = {
    "auto_converge_policy_override": "the migration policy turns auto-converge the other way than the cluster",
    "compression_policy_override": "the migration policy turns compression the other way than the cluster",
    "parallel_unsupported_level": "the compatibility version does not support parallel migrations",
    "zerocopy_unsupported_level": "the compatibility version does not support zero-copy",
    "zerocopy_disabled_encryption": "they are encrypted",
    "parallel_enforced": "zero-copy turns parallel connections on",
    "zerocopy_unsupported_host": "their host has not reported zero-copy support or lacks it",
    "zerocopy_unsupported_destination": "the destination host does not support zero-copy",
    "parallel_unsupported_host": "their host does not support parallel migrations",
    "parallel_unsupported_destination": "the destination host does not support parallel migrations",
    "parallel_fallback": "the bandwidth gives too few automatic parallel connections, or is not known",
    "compression_disabled": "a parallel migration is not compressed",
    "postcopy_removed": "a parallel migration cannot switch to post-copy",
    "postcopy_removed_paused": "a paused VM is not switched to post-copy",
    "encryption_unsupported_level": "the compatibility version has no migration encryption",
    "bandwidth_hypervisor_default": "the hypervisor's default bandwidth: the source host's own cap applies",
    "bandwidth_unknown_link_speed": "auto bandwidth without a known link speed: the source host's own cap applies",
    "hypervisor_schedule": "the policy sets no convergence schedule, so the hypervisor's own is used",
    "migration_address_unverified": "the destination's migration address is not one it is known to own",
    "zerocopy_memtune_limit": "their memory hard limit (memtune) is below what zero-copy must lock",
    "memtune_limit_not_enforced": "their memory hard limit is below what zero-copy locks, but their host does "
    "not enforce locked memory",
    "migration_time_limit": "their source host's agent limits a migration's total time",
    "destination_chosen": "Ferry chose the destination host (the one with the most free memory)",
}

#: Decisions taken before the plan is resolved (where the VM goes), recorded on the job's plan
#: next to the resolver's own: the resolver never makes them.
PLACEMENT_DECISIONS = frozenset({"destination_chosen"})


#: The decision codes, one member per DECISION_REASONS entry (the one list of them): the resolver,
#: the cluster form's notes, the API's schema and the impact preview all read it, and a code that
#: is not in it is refused where a decision is made.
DecisionCode = StrEnum("DecisionCode", {code.upper(): code for code in DECISION_REASONS})  # type: ignore[misc]


def zerocopy_lock_mib(memory_mib: int) -> int:
    """What a VM's memtune hard limit must allow for zero-copy: its RAM plus QEMU's own margin."""
    return memory_mib + ZEROCOPY_LOCK_OVERHEAD_MIB


def _same_address(a: str, b: str) -> bool:
    a, b = a.strip("[]").lower().rstrip("."), b.strip("[]").lower().rstrip(".")
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def owns_address(host: HostValues) -> bool:
    """Guest memory goes only to an address the destination owns: the host its libvirt control
    connection reaches (destination_uri's host), or one its own agent reported."""
    control = urlsplit(host.destination_uri).hostname or ""
    return bool(host.address) and any(
        _same_address(host.address, owned) for owned in (control, *host.addresses) if owned
    )


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _host(role: str, host: HostValues, *, start: bool = True) -> str:
    the = "The" if start else "the"
    return f"{the} {role} host {host.name}" if host.name else f"{the} {role} host"


def policy_override_message(setting: str, policy: PolicyValues) -> str:
    value = (policy.auto_convergence if setting == "auto-converge" else policy.migration_compression) == TRUE
    return (
        f"The migration policy {policy.name} turns {setting} {_on_off(value)}, so this migration runs with "
        f"{setting} {_on_off(value)} although the cluster's setting is {_on_off(not value)}."
    )


def _fallback_reason(bandwidth: int | None, automatic: int | None, vcpus: int, how: str) -> str:
    if automatic is None:
        return (
            "The number of parallel connections is worked out from the migration bandwidth, which is not known "
            f"here (the hypervisor's default, or a link speed that was not reported), so this migration {how}."
        )
    if bandwidth is not None and automatic == vcpus < bandwidth * 8 // MBIT_PER_CONNECTION:
        return (
            f"The VM has {vcpus} vCPU(s), and a migration uses at most one parallel connection per vCPU, "
            f"so this migration {how}."
        )
    return (
        f"At {bandwidth} MiB/s only {automatic} parallel connection(s) would be used "
        f"(one per {MBIT_PER_CONNECTION // 1024} Gbit/s), so this migration {how}."
    )


def _memtune_rule(vm: VMValues, source: HostValues, decide: Callable[[str, str], None]) -> bool:
    """Whether zero-copy stays on for the VM's memtune hard limit. libvirt lets QEMU lock no more
    than a declared hard limit, and zero-copy pins the guest's RAM as it sends it: a limit below
    the RAM plus QEMU's margin fails the migration wherever the source enforces locked memory
    (or has not said it does not)."""
    limit, memory = vm.memtune_hard_limit_mib, vm.memory_mib
    if limit is None or memory is None or limit >= zerocopy_lock_mib(memory):
        return True
    needed = zerocopy_lock_mib(memory)
    who = f"The VM {vm.name}" if vm.name else "The VM"
    if source.memlock_enforced is False:
        decide(
            "memtune_limit_not_enforced",
            f"{who} declares a memory hard limit (memtune) of {limit} MiB, below the {needed} MiB zero-copy "
            f"locks, but {_host('source', source, start=False)} does not hold QEMU to its locked-memory limit, so this "
            "migration uses zero-copy; it would not from a host that does.",
        )
        return True
    unknown = (
        f" ({_host('source', source, start=False)} has not reported whether it enforces locked memory)"
        if source.memlock_enforced is None
        else ""
    )
    decide(
        "zerocopy_memtune_limit",
        f"{who} declares a memory hard limit (memtune) of {limit} MiB, below the {needed} MiB zero-copy must "
        f"lock (its {memory} MiB of memory plus {ZEROCOPY_LOCK_OVERHEAD_MIB} MiB for QEMU){unknown}, so this "
        f"migration {NORMAL_COPY}: remove <hard_limit> from the VM's <memtune>, or raise it to at least "
        f"{needed} MiB.",
    )
    return False


def resolve_plan(
    *,
    vm: VMValues,
    cluster: ClusterValues,
    source: HostValues,
    destination: HostValues,
    defaults: Defaults = Defaults(),
) -> Plan:
    """The plan, with a decision (a stable code and a plain sentence) for every value that differs
    from what the admin set on the cluster or the VM, or that the hosts' reports limit."""
    decisions: list[Decision] = []

    def decide(code: str, message: str) -> None:
        decisions.append(Decision(DecisionCode(code).value, message))

    policy = vm.policy or cluster.policy
    level = cluster.compatibility_version
    encrypted = tri_state(vm.migration_encrypted, tri_state(cluster.migration_encrypted, defaults.encrypted))
    # A policy's own value wins; it is a decision when the admin set the cluster otherwise
    # (a cluster left to "inherit" takes the policy's value, or the global default without one).
    auto_converge = tri_state(cluster.migration_auto_converge, defaults.auto_converge)
    if policy.auto_convergence != INHERIT:
        if cluster.migration_auto_converge != INHERIT and policy.auto_convergence != cluster.migration_auto_converge:
            decide("auto_converge_policy_override", policy_override_message("auto-converge", policy))
        auto_converge = policy.auto_convergence == TRUE
    compressed = tri_state(cluster.migration_compressed, defaults.compressed)
    if policy.migration_compression != INHERIT:
        if cluster.migration_compressed != INHERIT and policy.migration_compression != cluster.migration_compressed:
            decide("compression_policy_override", policy_override_message("compression", policy))
        compressed = policy.migration_compression == TRUE
    if encrypted and level_tuple(level) < ENCRYPTION_MIN_LEVEL:
        decide(
            "encryption_unsupported_level",
            f"Compatibility version {level} does not support migration encryption, so this migration is not encrypted.",
        )
        encrypted = False

    if vm.parallel_migrations_policy != INHERIT:
        parallel, custom_count = vm.parallel_migrations_policy, vm.custom_parallel_migrations
    else:
        parallel, custom_count = cluster.parallel_migrations_policy, cluster.custom_parallel_migrations
    if not cluster.parallel_migrations_supported and parallel != DISABLED:
        decide(
            "parallel_unsupported_level",
            f"Compatibility version {level} does not support parallel migrations, so the parallel setting "
            f"{PARALLEL_LABELS.get(parallel, parallel)} is ignored and this migration is not parallel.",
        )
        parallel = DISABLED

    zerocopy = False
    if policy.zerocopy:
        if not cluster.parallel_migrations_supported:
            decide(
                "zerocopy_unsupported_level",
                f"The migration policy {policy.name} uses zero-copy, but compatibility version {level} does not "
                f"support parallel migrations, so this migration {NORMAL_COPY}.",
            )
        elif encrypted:
            decide(
                "zerocopy_disabled_encryption",
                f"This migration is encrypted and zero-copy cannot be encrypted, so it {NORMAL_COPY}.",
            )
        else:
            zerocopy = True
    if zerocopy and parallel in (DISABLED, AUTO):
        decide(
            "parallel_enforced",
            f"Zero-copy needs parallel connections, so this migration uses them (Auto Parallel) although "
            f"parallel migrations are set to {PARALLEL_LABELS[parallel]}.",
        )
        parallel = AUTO_PARALLEL
    if zerocopy and source.zerocopy_migrations is not True:
        if source.zerocopy_migrations is None:
            reason = f"{_host('source', source)} has not reported whether it supports zero-copy"
        else:
            reason = f"{_host('source', source)} does not support zero-copy"
        decide("zerocopy_unsupported_host", f"{reason}, so this migration {NORMAL_COPY}.")
        zerocopy = False
    if zerocopy and destination.zerocopy_migrations is False:
        decide(
            "zerocopy_unsupported_destination",
            f"{_host('destination', destination)} does not support zero-copy, so this migration {NORMAL_COPY}.",
        )
        zerocopy = False
    for code, role, host in (
        ("parallel_unsupported_host", "source", source),
        ("parallel_unsupported_destination", "destination", destination),
    ):
        if parallel != DISABLED and host.parallel_migrations is False:
            also = f" and {NORMAL_COPY}" if zerocopy else ""
            decide(
                code,
                f"{_host(role, host)} does not support parallel migrations, so this migration is not parallel{also}.",
            )
            parallel, zerocopy = DISABLED, False

    if zerocopy:
        zerocopy = _memtune_rule(vm, source, decide)

    cluster_bandwidth = _cluster_bandwidth_mib_s(cluster, source, destination)
    if cluster_bandwidth is not None:
        # Shared by the policy's concurrent migrations; never 0, which libvirt reads as "unlimited".
        bandwidth = max(1, cluster_bandwidth // max(1, cluster.policy.max_migrations))
    else:
        # No figure from the engine: the source host's own cap applies, as Vdsm applies its
        # migration_max_bandwidth; never unthrottled.
        bandwidth = source.max_bandwidth_mib_s or HYPERVISOR_BANDWIDTH_MIB_S
        whose = (
            f"the source host{' ' + source.name if source.name else ''}'s configured cap of {bandwidth} MiB/s"
            if source.max_bandwidth_mib_s
            else f"the hypervisor's default of {HYPERVISOR_BANDWIDTH_MIB_S} MiB/s (the source host reported no cap)"
        )
        if cluster.migration_bandwidth == AUTO:
            silent = [
                _host(role, host, start=False)
                for role, host in (("source", source), ("destination", destination))
                if not host.link_speed_mbps
            ]
            decide(
                "bandwidth_unknown_link_speed",
                f"The bandwidth is Auto, but {' and '.join(silent)} {'has' if len(silent) == 1 else 'have'} not "
                f"reported a link speed, so this migration is limited to {whose}.",
            )
        else:
            decide(
                "bandwidth_hypervisor_default",
                f"The bandwidth is the hypervisor's default, so this migration is limited to {whose}.",
            )

    connections: int | None = None
    if parallel == CUSTOM:
        connections = min(custom_count or 2, max(2, vm.vcpus), MAX_CONNECTIONS)
    elif parallel in (AUTO, AUTO_PARALLEL):
        # From the cluster's figure before it is shared between migrations, as oVirt's engine does.
        automatic = min(cluster_bandwidth * 8 // MBIT_PER_CONNECTION, vm.vcpus) if cluster_bandwidth else None
        if automatic is not None and automatic >= 2:
            connections = min(automatic, MAX_CONNECTIONS)
        elif parallel == AUTO_PARALLEL:
            connections = 2
            decide("parallel_fallback", _fallback_reason(cluster_bandwidth, automatic, vm.vcpus, "uses 2 connections"))
        else:
            decide("parallel_fallback", _fallback_reason(cluster_bandwidth, automatic, vm.vcpus, "is not parallel"))

    is_parallel = connections is not None
    drop_postcopy = False
    if is_parallel:
        if compressed:
            decide(
                "compression_disabled",
                "A parallel migration cannot be compressed, so this migration is not compressed.",
            )
            compressed = False
        if has_postcopy(policy.convergence):
            decide(
                "postcopy_removed",
                f"The migration policy {policy.name} switches to post-copy when a migration stalls, which a "
                "parallel migration cannot do, so those steps are left out.",
            )
            drop_postcopy = True
    if vm.paused and not drop_postcopy and has_postcopy(policy.convergence):
        # oVirt never switches a paused VM to post-copy: its guest runs nowhere while paused,
        # and post-copy would resume it on the destination with its memory still on the source.
        decide(
            "postcopy_removed_paused",
            f"The migration policy {policy.name} switches to post-copy when a migration stalls; the VM is "
            "paused, and a paused VM is not switched to post-copy, so those steps are left out.",
        )
        drop_postcopy = True
    schedule = plan_schedule(policy.convergence, drop_postcopy=drop_postcopy)
    if not has_schedule(policy.convergence):
        decide(
            "hypervisor_schedule",
            f"The migration policy {policy.name} sets no convergence schedule, so the hypervisor's own is "
            "used, as oVirt's hosts do: the allowed downtime grows from 101 ms to 500 ms over the first "
            "four memory passes, and the migration is stopped if it has not finished after 42 passes.",
        )
    post_copy = any(step["action"]["name"] == "postcopy" for step in schedule["stalling"])
    limit = 1 if is_parallel else policy.max_migrations

    flags = list(BASE_FLAGS)
    params: dict[str, Any] = {}
    if owns_address(destination):
        params["migrate_uri"] = f"tcp://{_uri_host(destination.address)}"
    else:
        control = urlsplit(destination.destination_uri).hostname or "its libvirt connection's host"
        decide(
            "migration_address_unverified",
            f"{_host('destination', destination)} has the migration address {destination.address}, which is "
            f"neither the host its libvirt connection reaches ({control}) nor an address its agent reported, so "
            "the guest's memory is not sent there: the destination's libvirtd chooses its own address.",
        )
    if auto_converge:
        flags.append("VIR_MIGRATE_AUTO_CONVERGE")
    if compressed:
        flags.append("VIR_MIGRATE_COMPRESSED")
    if encrypted:
        flags.append("VIR_MIGRATE_TLS")
        if "migrate_uri" in params:
            # The name the destination's certificate carries: the host its libvirt connection
            # names (its management name, as Vdsm sends), not the migration address, which a
            # host certificate usually does not name. Without a migrate_uri the destination's
            # libvirtd names its own address, and TLS checks that name.
            params["tls.destination"] = uri_host(destination.destination_uri) or destination.address
    if post_copy:
        flags.append("VIR_MIGRATE_POSTCOPY")
    if is_parallel:
        flags.append("VIR_MIGRATE_PARALLEL")
        params["parallel.connections"] = connections
    if zerocopy:
        flags.append("VIR_MIGRATE_ZEROCOPY")
    params["bandwidth"] = bandwidth

    if source.migration_timeout_s:
        # Vdsm has no total limit: one that the source's agent sets is said, since it can abort a long run.
        decide(
            "migration_time_limit",
            f"{_host('source', source)}'s agent aborts a migration that has not ended after "
            f"{source.migration_timeout_s:g} s, so a very large VM may not finish: remove the limit "
            "(ferry-agent --migration-timeout 0) to let it end by its schedule alone.",
        )

    return Plan(
        policy={"id": str(policy.id), "name": policy.name},
        zerocopy=zerocopy,
        parallel_connections=connections,
        encrypted=encrypted,
        compressed=compressed,
        auto_converge=auto_converge,
        post_copy=post_copy,
        max_bandwidth_mib_s=bandwidth,
        incoming_limit=limit,
        outgoing_limit=limit,
        convergence_schedule=schedule,
        destination_uri=destination.destination_uri,
        flags=flags,
        params=params,
        decisions=decisions,
    )


def migration_limits(source: HostValues) -> dict[str, float | None] | None:
    """The limits the source host's agent holds a migration to, as it reported them: the
    schedule's pulse, the stall watchdog and a total limit (None: none). None: not reported.
    Shown with a plan (the migrate page); a total limit is also a decision of the plan."""
    if source.migration_pulse_s is None:
        return None
    return {
        "pulse_s": source.migration_pulse_s,
        "stall_s": source.migration_stall_s,
        "total_s": source.migration_timeout_s,
    }


def invariant_violations(plan: dict[str, Any]) -> list[str]:
    """The rules every plan obeys, checked on the plan's JSON form."""
    flags = set(plan["libvirt"]["flags"])
    params = plan["libvirt"]["params"]
    problems = []
    if "VIR_MIGRATE_ZEROCOPY" in flags:
        if "VIR_MIGRATE_PARALLEL" not in flags:
            problems.append("ZEROCOPY without PARALLEL")
        if "VIR_MIGRATE_TLS" in flags:
            problems.append("ZEROCOPY with TLS")
        if "VIR_MIGRATE_COMPRESSED" in flags:
            problems.append("ZEROCOPY with COMPRESSED")
    if "VIR_MIGRATE_PARALLEL" in flags and "VIR_MIGRATE_TUNNELLED" in flags:
        problems.append("PARALLEL with TUNNELLED")
    if ("VIR_MIGRATE_PARALLEL" in flags) != ("parallel.connections" in params):
        problems.append("PARALLEL and parallel.connections disagree")
    if "parallel.connections" in params and not 2 <= params["parallel.connections"] <= MAX_CONNECTIONS:
        problems.append("parallel.connections out of 2..255")
    if plan["zerocopy"] != ("VIR_MIGRATE_ZEROCOPY" in flags):
        problems.append("zerocopy field and flag disagree")
    if plan["encrypted"] != ("VIR_MIGRATE_TLS" in flags):
        problems.append("encrypted field and TLS flag disagree")
    if plan["parallel_connections"] is not None and (plan["incoming_limit"], plan["outgoing_limit"]) != (1, 1):
        problems.append("parallel migration with limits other than 1")
    if plan["post_copy"] and plan["parallel_connections"] is not None:
        problems.append("post-copy in a parallel migration")
    if "bandwidth" in params and params["bandwidth"] < 1:
        problems.append("bandwidth below 1 MiB/s")
    return problems
