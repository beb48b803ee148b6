"""Ferry's objects in oVirt's shape, and oVirt's request bodies in Ferry's terms.

Field names and enum values already match oVirt's (ClusterLevel, TriState, ParallelPolicy,
Bandwidth, ErrorHandling); what differs is spelled out here once: host and job statuses, units
(bytes, not MiB), and where the engine nests things (<version><major/><minor/></version>).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from django.db.models import Case, CharField, Exists, F, OuterRef, QuerySet, Value, When
from django.utils import timezone

from clusters.models import VM, Bandwidth, Cluster, ClusterLevel, ErrorHandling, Host, HostStatus, ParallelPolicy
from core.choices import TriState, level_key
from migrations_app.models import ACTIVE_STATES, JobState, MigrationJob
from ovirt_api.errors import Fault
from ovirt_api.representation import Tree
from ovirt_api.search import FieldFilter, exact, exact_uuid, glob, one_of
from policies.models import MigrationPolicy

BASE = "/ovirt-engine/api"
MIB = 1024 * 1024

# oVirt's HostStatus has no "unknown": a host Ferry cannot reach is "non_responsive" there.
HOST_STATUS = {
    HostStatus.UP: "up",
    HostStatus.MAINTENANCE: "maintenance",
    HostStatus.NON_OPERATIONAL: "non_operational",
    HostStatus.UNKNOWN: "non_responsive",
    "preparing_for_maintenance": "preparing_for_maintenance",
    "activating": "initializing",
}
OVIRT_HOST_STATUSES = (
    "connecting", "down", "error", "initializing", "install_failed", "installing", "installing_os", "kdumping",
    "maintenance", "non_operational", "non_responsive", "pending_approval", "preparing_for_maintenance", "reboot",
    "unassigned", "up",
)  # fmt: skip
OVIRT_VM_STATUSES = (
    "down", "image_locked", "migrating", "not_responding", "paused", "powering_down", "powering_up",
    "reboot_in_progress", "restoring_state", "saving_state", "suspended", "unassigned", "unknown", "up",
    "wait_for_launch",
)  # fmt: skip
# A job is "started" from the moment it is accepted, as in the engine, until it ends.
JOB_STATUS: dict[str, str] = {
    JobState.QUEUED: "started",
    JobState.RUNNING: "started",
    JobState.SUCCEEDED: "finished",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "aborted",
}
OVIRT_JOB_STATUSES = ("started", "finished", "failed", "aborted", "unknown")


def _reverse(mapping: dict[str, str], ovirt_values) -> dict[str, tuple[str, ...]]:
    return {value: tuple(str(k) for k, v in mapping.items() if v == value) for value in ovirt_values}


def link(kind: str, pk: Any) -> Tree:
    return {"href": f"{BASE}/{kind}/{pk}", "id": str(pk)}


def _version(level: str) -> Tree:
    major, minor = level.split(".")[:2]
    return {"major": int(major), "minor": int(minor)}


# Clusters.

CLUSTER_SEARCH: dict[str, FieldFilter] = {"name": glob("name"), "id": exact_uuid("pk")}


def cluster_queryset() -> QuerySet[Cluster]:
    return Cluster.objects.select_related("compatibility_version")


def cluster_tree(cluster: Cluster) -> Tree:
    bandwidth: Tree = {"assignment_method": cluster.migration_bandwidth}
    if cluster.migration_bandwidth == Bandwidth.CUSTOM:
        bandwidth["custom_value"] = cluster.migration_bandwidth_custom_mbps
    migration: Tree = {
        "auto_converge": cluster.migration_auto_converge,
        "compressed": cluster.migration_compressed,
        "encrypted": cluster.migration_encrypted,
        "bandwidth": bandwidth,
        "parallel_migrations_policy": cluster.parallel_migrations_policy,
        "custom_parallel_migrations": cluster.custom_parallel_migrations,
        "policy": {"id": str(cluster.migration_policy_id)},
    }
    return link("clusters", cluster.pk) | {
        "name": cluster.name,
        "description": cluster.description,
        # A foreign key that is never null; the stubs make the id of one with a default optional.
        "version": _version(cast(str, cluster.compatibility_version_id)),
        "error_handling": {"on_error": cluster.error_handling},
        "migration": migration,
    }


def _only(tree: Any, allowed: set[str], where: str) -> Tree:
    """A body element that must be an object with only the given children."""
    if tree == "":
        return {}
    if not isinstance(tree, dict):
        raise Fault(f"<{where}> must hold elements, not a value.")
    unknown = sorted(set(tree) - allowed)
    if unknown:
        raise Fault(
            f"Ferry does not support <{unknown[0]}> in <{where}>; it accepts "
            + ", ".join(f"<{name}>" for name in sorted(allowed - {"href", "id"}))
            + "."
        )
    return tree


def _value(tree: Tree, key: str, where: str) -> str | None:
    value = tree.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Fault(f"<{where}><{key}> must be a single value.")
    return value


def _choice(tree: Tree, key: str, where: str, choices) -> str | None:
    value = _value(tree, key, where)
    if value is not None and value not in choices:
        raise Fault(f'<{where}><{key}> "{value[:50]}" is not one of: {", ".join(choices)}.')
    return value


def _integer(tree: Tree, key: str, where: str) -> int | None:
    value = _value(tree, key, where)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Fault(f'<{where}><{key}> must be an integer, not "{value[:50]}".') from None


def _policy(tree: Any) -> MigrationPolicy:
    if tree == "" or not isinstance(tree, dict) or not (tree.get("id") or tree.get("name")):
        raise Fault(
            'A Ferry cluster always has a migration policy: name one with <policy id="..."/> '
            "(the ids are in the MigrationPolicies option)."
        )
    _only(tree, {"id", "href", "name"}, "policy")
    policies = MigrationPolicy.objects.all()
    if tree.get("id"):
        try:
            policy = policies.filter(pk=uuid.UUID(str(tree["id"]))).first()
        except ValueError:
            policy = None
        if policy is None:
            raise Fault(f'No migration policy has the id "{str(tree["id"])[:50]}".')
        return policy
    policy = policies.filter(name=str(tree["name"])).first()
    if policy is None:
        raise Fault(f'No migration policy is named "{str(tree["name"])[:100]}".')
    return policy


def cluster_changes(body: Tree, cluster: Cluster) -> dict[str, Any]:
    """A PUT body (only the fields it names) as changes for clusters.services.cluster_update."""
    body = _only(body, {"id", "href", "name", "description", "version", "error_handling", "migration"}, "cluster")
    if body.get("id") not in (None, str(cluster.pk)):
        raise Fault("The id in the body is not the id of the cluster in the URL.")
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        value = _value(body, key, "cluster")
        if value is not None:
            changes[key] = value
    if "version" in body:
        version = _only(body["version"], {"major", "minor", "build", "revision", "full_version"}, "version")
        major, minor = _integer(version, "major", "version"), _integer(version, "minor", "version")
        if major is None or minor is None:
            raise Fault("<version> needs <major> and <minor>.")
        level = f"{major}.{minor}"
        if not ClusterLevel.objects.filter(level=level).exists():
            known = sorted(ClusterLevel.objects.values_list("level", flat=True), key=level_key)
            raise Fault(f"Ferry has no compatibility version {level}; it knows {', '.join(known)}.")
        changes["compatibility_version_id"] = level
    if "error_handling" in body:
        handling = _only(body["error_handling"], {"on_error"}, "error_handling")
        on_error = _choice(handling, "on_error", "error_handling", ErrorHandling.values)
        if on_error is not None:
            changes["error_handling"] = on_error
    if "migration" in body:
        changes |= _migration_changes(body["migration"])
    return changes


def _migration_changes(tree: Any) -> dict[str, Any]:
    where = "migration"
    tree = _only(
        tree,
        {
            "href",
            "auto_converge",
            "compressed",
            "encrypted",
            "bandwidth",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "policy",
        },
        where,
    )
    changes: dict[str, Any] = {}
    for key, field in (
        ("auto_converge", "migration_auto_converge"),
        ("compressed", "migration_compressed"),
        ("encrypted", "migration_encrypted"),
    ):
        value = _choice(tree, key, where, TriState.values)
        if value is not None:
            changes[field] = value
    if "bandwidth" in tree:
        bandwidth = _only(tree["bandwidth"], {"assignment_method", "custom_value"}, "bandwidth")
        method = _choice(bandwidth, "assignment_method", "bandwidth", Bandwidth.values)
        if method is not None:
            changes["migration_bandwidth"] = method
        custom = _integer(bandwidth, "custom_value", "bandwidth")
        if custom is not None:
            changes["migration_bandwidth_custom_mbps"] = custom
    parallel = _value(tree, "parallel_migrations_policy", where)
    if parallel == "inherit":
        raise Fault("A cluster's parallel_migrations_policy cannot be inherit: only a VM's can.")
    parallel = _choice(tree, "parallel_migrations_policy", where, ParallelPolicy.values)
    if parallel is not None:
        changes["parallel_migrations_policy"] = parallel
    count = _integer(tree, "custom_parallel_migrations", where)
    if count is not None:
        changes["custom_parallel_migrations"] = count
    if "policy" in tree:
        changes["migration_policy"] = _policy(tree["policy"])
    return changes


# Hosts.

HOST_SEARCH: dict[str, FieldFilter] = {
    "name": glob("name"),
    "id": exact_uuid("pk"),
    "cluster": glob("cluster__name"),
    "address": glob("address"),
    "status": one_of("status", _reverse(HOST_STATUS, OVIRT_HOST_STATUSES), "host status"),
}


def host_queryset() -> QuerySet[Host]:
    return Host.objects.all()


def _libvirt_version(text: str | None) -> Tree | None:
    if not text:
        return None
    parts = [int(part) if part.isdigit() else None for part in text.split(".")[:3]]
    parts += [None] * (3 - len(parts))
    return {"major": parts[0], "minor": parts[1], "revision": parts[2], "full_version": f"libvirt-{text}"}


def host_tree(host: Host) -> Tree:
    caps = host.capabilities or {}
    memory_mib, cpus = caps.get("memory_mib"), caps.get("cpu_count")
    return link("hosts", host.pk) | {
        "name": host.name,
        "address": host.address,
        "status": HOST_STATUS.get(host.status, host.status),
        "cluster": link("clusters", host.cluster_id),
        "memory": memory_mib * MIB if memory_mib is not None else None,
        "cpu": {"topology": {"cores": cpus, "sockets": 1, "threads": 1}} if cpus else None,
        "libvirt_version": _libvirt_version(caps.get("libvirt_version")),
    }


# VMs. A VM with a queued or running job reads "migrating" (the engine's VM does from the moment
# the migration is accepted), and its host changes when the job succeeds.

VM_SEARCH: dict[str, FieldFilter] = {
    "name": glob("name"),
    "id": exact_uuid("pk"),
    "host": glob("host__name"),
    "cluster": glob("host__cluster__name"),
    "status": one_of("ovirt_status", {value: (value,) for value in OVIRT_VM_STATUSES}, "VM status"),
}


def vm_queryset() -> QuerySet[VM]:
    migrating = MigrationJob.objects.filter(vm=OuterRef("pk"), state__in=ACTIVE_STATES)
    return VM.objects.select_related("host").annotate(
        ovirt_status=Case(
            When(Exists(migrating), then=Value("migrating")), default=F("status"), output_field=CharField()
        )
    )


def vm_tree(vm: VM) -> Tree:
    migration: Tree = {
        "encrypted": vm.migration_encrypted,
        "parallel_migrations_policy": vm.parallel_migrations_policy,
        "custom_parallel_migrations": vm.custom_parallel_migrations,
        "policy": {"id": str(vm.migration_policy_id)} if vm.migration_policy_id else None,
    }
    return link("vms", vm.pk) | {
        "name": vm.name,
        "status": getattr(vm, "ovirt_status", vm.status),
        "memory": vm.memory_mib * MIB,
        "cpu": {"topology": {"cores": vm.vcpus, "sockets": 1, "threads": 1}},
        "cluster": link("clusters", vm.host.cluster_id),
        "host": link("hosts", vm.host_id),
        "migration": migration,
    }


# Jobs: Ferry's migration jobs.

JOB_SEARCH: dict[str, FieldFilter] = {
    "correlation_id": exact("correlation_id"),
    "id": exact_uuid("pk"),
    "status": one_of("state", _reverse(JOB_STATUS, OVIRT_JOB_STATUSES), "job status"),
}


def job_queryset() -> QuerySet[MigrationJob]:
    return MigrationJob.objects.select_related("vm", "source_host", "destination_host")


def job_tree(job: MigrationJob) -> Tree:
    source = job.source_host.name if job.source_host else "(removed)"
    destination = job.destination_host.name if job.destination_host else "(removed)"
    return link("jobs", job.pk) | {
        "description": f"Migrating VM {job.vm.name} from Host {source} to Host {destination}",
        "status": JOB_STATUS.get(job.state, "unknown"),
        "start_time": job.created_at,
        "end_time": job.finished_at,
        "last_updated": job.finished_at or job.started_at or job.created_at,
        "external": False,
        "auto_cleared": True,
    }


# The root and the MigrationPolicies option.


def api_tree(levels: list[str]) -> Tree:
    newest = max(levels, key=level_key) if levels else "4.8"
    major, minor = _version(newest)["major"], _version(newest)["minor"]
    return {
        "product_info": {
            "name": "Ferry",
            "vendor": "Ferry",
            "version": {
                "build": 0,
                "full_version": f"{major}.{minor}.0",
                "major": major,
                "minor": minor,
                "revision": 0,
            },
        },
        "link": [{"href": f"{BASE}/{rel}", "rel": rel} for rel in ("clusters", "hosts", "vms", "jobs")],
        "time": timezone.now(),
    }


def _tri(value: str) -> bool | None:
    return None if value == TriState.INHERIT else value == TriState.TRUE


def policy_config(policy: MigrationPolicy) -> dict[str, Any]:
    """One policy as the engine's MigrationPolicies configuration writes it."""
    convergence = policy.convergence or {}
    initial = convergence.get("initial")
    return {
        "id": {"uuid": str(policy.pk)},
        "maxMigrations": policy.max_migrations,
        "autoConvergence": _tri(policy.auto_convergence),
        "migrationCompression": _tri(policy.migration_compression),
        "enableGuestEvents": policy.enable_guest_events,
        "zerocopy": policy.zerocopy,
        "name": policy.name,
        "description": policy.description,
        "config": {
            "convergenceItems": [
                {
                    "stallingLimit": step["limit"],
                    "convergenceItem": {"action": step["action"]["name"], "params": step["action"]["params"]},
                }
                for step in convergence.get("stalling", [])
            ],
            "initialItems": [{"action": "setDowntime", "params": [str(initial)]}] if initial else [],
            "lastItems": [{"action": item["name"], "params": item["params"]} for item in convergence.get("last", [])],
        },
    }


def migration_policies_tree(levels: list[ClusterLevel]) -> Tree:
    policies = list(MigrationPolicy.objects.all())
    values = []
    for level in sorted(levels, key=lambda item: level_key(item.level)):
        offered = [
            policy_config(policy)
            for policy in policies
            if policy.is_offered_at(level=level.level, parallel_supported=level.parallel_migrations_supported)
        ]
        values.append({"value": json.dumps(offered, separators=(",", ":")), "version": level.level})
    return {
        "href": f"{BASE}/options/MigrationPolicies",
        "id": "MigrationPolicies",
        "name": "MigrationPolicies",
        "values": {"system_option_value": values},
    }
