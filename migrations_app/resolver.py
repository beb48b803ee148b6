"""The migration resolver: (VM, cluster, policy, hosts) -> the exact libvirt migration plan.

A pure function over plain values. The UI, the API, admin and the host tasks all call it, so
what an admin previews is what libvirt receives. Every option it resolves silently is reported
as a decision with a stable code; the migration always proceeds with whatever resulted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies.convergence import has_postcopy, plan_schedule

MAX_CONNECTIONS = 255  # QEMU takes an 8-bit multifd channel count
MBIT_PER_CONNECTION = 10_240  # one automatic connection per 10 Gbit/s
BASE_FLAGS = (
    "VIR_MIGRATE_LIVE",
    "VIR_MIGRATE_PEER2PEER",
    "VIR_MIGRATE_PERSIST_DEST",
    "VIR_MIGRATE_UNDEFINE_SOURCE",
)

INHERIT, TRUE = "inherit", "true"
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


@dataclass(frozen=True)
class HostValues:
    address: str
    destination_uri: str
    link_speed_mbps: int | None = None
    zerocopy_migrations: bool | None = None  # None: not reported yet
    parallel_migrations: bool | None = None


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


def _tri(value: str, inherited: bool) -> bool:
    return inherited if value == INHERIT else value == TRUE


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _bandwidth_mib_s(cluster: ClusterValues, source: HostValues, destination: HostValues) -> int | None:
    """Per-migration bandwidth in MiB/s, or None for no limit (the hypervisor's default)."""
    if cluster.migration_bandwidth == CUSTOM:
        mbps = cluster.migration_bandwidth_custom_mbps
    elif cluster.migration_bandwidth == AUTO:
        speeds = [s for s in (source.link_speed_mbps, destination.link_speed_mbps) if s]
        mbps = min(speeds) if len(speeds) == 2 else None
    else:
        mbps = None
    if not mbps:
        return None
    # Never 0: libvirt reads a bandwidth of 0 as "unlimited".
    return max(1, (mbps // 8) // max(1, cluster.policy.max_migrations))


def resolve_plan(
    *,
    vm: VMValues,
    cluster: ClusterValues,
    source: HostValues,
    destination: HostValues,
    defaults: Defaults = Defaults(),
) -> Plan:
    decisions: list[Decision] = []

    def decide(code: str, message: str) -> None:
        decisions.append(Decision(code, message))

    policy = vm.policy or cluster.policy
    level = cluster.compatibility_version
    encrypted = _tri(vm.migration_encrypted, _tri(cluster.migration_encrypted, defaults.encrypted))
    if policy.auto_convergence == INHERIT:
        auto_converge = _tri(cluster.migration_auto_converge, defaults.auto_converge)
    else:
        auto_converge = policy.auto_convergence == TRUE
    if policy.migration_compression == INHERIT:
        compressed = _tri(cluster.migration_compressed, defaults.compressed)
    else:
        compressed = policy.migration_compression == TRUE

    if vm.parallel_migrations_policy != INHERIT:
        parallel, custom_count = vm.parallel_migrations_policy, vm.custom_parallel_migrations
    else:
        parallel, custom_count = cluster.parallel_migrations_policy, cluster.custom_parallel_migrations
    if not cluster.parallel_migrations_supported and parallel != DISABLED:
        decide(
            "parallel_unsupported_level",
            f"Compatibility version {level} does not support parallel migrations: "
            f"the parallel setting '{parallel}' is ignored.",
        )
        parallel = DISABLED

    zerocopy = False
    if policy.zerocopy:
        if not cluster.parallel_migrations_supported:
            decide(
                "zerocopy_unsupported_level",
                f"Compatibility version {level} does not support parallel migrations, so zero-copy is not used.",
            )
        elif encrypted:
            decide("zerocopy_disabled_encryption", "Migration encryption is on, so zero-copy is not enabled.")
        else:
            zerocopy = True
    if zerocopy and parallel in (DISABLED, AUTO):
        decide(
            "parallel_enforced",
            f"Parallel migrations were '{parallel}'; they are enabled with an automatic number "
            "of connections because zero-copy needs them.",
        )
        parallel = AUTO_PARALLEL
    if zerocopy and source.zerocopy_migrations is not True:
        reported = "has not reported its capabilities" if source.zerocopy_migrations is None else "does not"
        decide(
            "zerocopy_unsupported_host",
            f"API call mismatch: the source host {reported} support zero-copy migrations; migrating without zero-copy.",
        )
        zerocopy = False
    if parallel != DISABLED and source.parallel_migrations is False:
        decide(
            "parallel_unsupported_host",
            "The source host does not support parallel migrations: migrating without parallel "
            "connections" + (" or zero-copy." if zerocopy else "."),
        )
        parallel, zerocopy = DISABLED, False

    bandwidth = _bandwidth_mib_s(cluster, source, destination)

    connections: int | None = None
    if parallel == CUSTOM:
        connections = min(custom_count or 2, max(2, vm.vcpus), MAX_CONNECTIONS)
    elif parallel in (AUTO, AUTO_PARALLEL):
        automatic = min(bandwidth * 8 // MBIT_PER_CONNECTION, vm.vcpus) if bandwidth else None
        if automatic is not None and automatic >= 2:
            connections = min(automatic, MAX_CONNECTIONS)
        else:
            why = (
                f"the automatic count is {automatic} ({bandwidth} MiB/s, {vm.vcpus} vCPUs)"
                if automatic is not None
                else "no bandwidth figure is known to derive it from"
            )
            if parallel == AUTO_PARALLEL:
                connections = 2
                decide("parallel_fallback", f"Parallel connections: {why}, so 2 connections are used.")
            else:
                decide("parallel_fallback", f"Parallel connections: {why}, so the migration is not parallel.")

    is_parallel = connections is not None
    drop_postcopy = False
    if is_parallel:
        if compressed:
            decide("compression_disabled", "Compression is switched off because the migration is parallel.")
            compressed = False
        if has_postcopy(policy.convergence):
            decide("postcopy_removed", "Post-copy steps are removed because the migration is parallel.")
            drop_postcopy = True
    schedule = plan_schedule(policy.convergence, drop_postcopy=drop_postcopy)
    post_copy = any(step["action"]["name"] == "postcopy" for step in schedule["stalling"])
    limit = 1 if is_parallel else policy.max_migrations

    flags = list(BASE_FLAGS)
    params: dict[str, Any] = {"migrate_uri": f"tcp://{_uri_host(destination.address)}"}
    if auto_converge:
        flags.append("VIR_MIGRATE_AUTO_CONVERGE")
    if compressed:
        flags.append("VIR_MIGRATE_COMPRESSED")
    if encrypted:
        flags.append("VIR_MIGRATE_TLS")
        params["tls.destination"] = destination.address
    if post_copy:
        flags.append("VIR_MIGRATE_POSTCOPY")
    if is_parallel:
        flags.append("VIR_MIGRATE_PARALLEL")
        params["parallel.connections"] = connections
    if zerocopy:
        flags.append("VIR_MIGRATE_ZEROCOPY")
    if bandwidth is not None:
        params["bandwidth"] = bandwidth

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
