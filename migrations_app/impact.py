"""What the next migration of every VM of a cluster would do under proposed cluster settings.

Nothing is saved: the proposed values are applied to a copy of the cluster, and the resolver plans
each VM's migration from its host to the host Ferry would pick first (another host of the cluster
that is up, by name; any other host when none is up). A constant number of queries, whatever the cluster's size.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from clusters.models import VM, Cluster, Host, HostStatus
from migrations_app.resolver import DECISION_REASONS, HostValues, VMValues, resolve_plan
from migrations_app.selectors import cluster_values, global_defaults, host_values, policy_values
from policies.models import MigrationPolicy

# Proposable: the cluster's migration settings (not its name or description).
PROPOSABLE_FIELDS = (
    "compatibility_version",
    "migration_policy",
    "migration_bandwidth",
    "migration_bandwidth_custom_mbps",
    "migration_auto_converge",
    "migration_compressed",
    "migration_encrypted",
    "parallel_migrations_policy",
    "custom_parallel_migrations",
)


def cluster_with_proposal(*, cluster: Cluster, proposed: dict[str, Any]) -> Cluster:
    """An unsaved copy of `cluster` with `proposed` applied, checked by the model's own rules."""
    candidate = Cluster(**{f.attname: getattr(cluster, f.attname) for f in Cluster._meta.concrete_fields})
    candidate._state.adding = False
    candidate._original = dict(getattr(cluster, "_original", {}))
    candidate.compatibility_version = cluster.compatibility_version
    candidate.migration_policy = cluster.migration_policy
    for name, value in proposed.items():
        setattr(candidate, name, value)
    candidate.full_clean(exclude=["name", "description"], validate_unique=False)
    return candidate


def _outcome_label(*, zerocopy: bool, parallel: bool) -> str:
    if zerocopy:
        return "would use zero-copy"
    if parallel:
        return "would migrate over parallel connections without zero-copy"
    return "would migrate without parallel connections or zero-copy"


def cluster_impact(*, cluster: Cluster, proposed: dict[str, Any]) -> dict[str, Any]:
    """{"total_vms", "policy", "groups": [{"count", "vms", "zerocopy", "parallel", "codes", "label", ...}]}.

    Raises ValidationError for proposed values the cluster form would refuse.
    """
    candidate = cluster_with_proposal(cluster=cluster, proposed=proposed)
    values = cluster_values(candidate)
    defaults = global_defaults()
    hosts = list(Host.objects.filter(cluster=cluster).order_by("name", "pk"))
    by_pk = {host.pk: host_values(host) for host in hosts}
    up = [host.pk for host in hosts if host.status == HostStatus.UP]
    destination_of: dict[Any, HostValues] = {}
    for host in hosts:
        chosen = next((pk for pk in up if pk != host.pk), None)
        chosen = chosen or next((h.pk for h in hosts if h.pk != host.pk), None)
        # A cluster of one host: no destination has reported anything.
        destination_of[host.pk] = (
            by_pk[chosen] if chosen else HostValues(address=host.address, destination_uri="", addresses=(host.address,))
        )

    # Plain rows, and one plan per distinct set of inputs: VMs that differ only by name share it.
    rows = (
        VM.objects.filter(host__cluster=cluster)
        .order_by("name", "pk")
        .values_list(
            "pk",
            "host_id",
            "vcpus",
            "migration_policy_id",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "migration_encrypted",
            "memory_mib",
            "memtune_hard_limit_mib",
        )
    )
    inputs: dict[tuple, list[str]] = defaultdict(list)
    for pk, *plan_inputs, memory, limit in rows:
        # The memory counts only against a hard limit: VMs without one keep sharing their plan.
        inputs[(*plan_inputs, memory if limit is not None else None, limit)].append(str(pk))
    own_policies = {key[2] for key in inputs if key[2] is not None}
    policies = {p.pk: policy_values(p) for p in MigrationPolicy.objects.filter(pk__in=own_policies)}
    groups: dict[tuple, dict[str, Any]] = {}
    members: dict[tuple, list[str]] = defaultdict(list)
    total = 0
    for (host_id, vcpus, policy_id, parallel, custom, encrypted, memory, limit), vm_ids in inputs.items():
        total += len(vm_ids)
        plan = resolve_plan(
            vm=VMValues(
                vcpus=vcpus,
                policy=policies.get(policy_id),
                parallel_migrations_policy=parallel,
                custom_parallel_migrations=custom,
                migration_encrypted=encrypted,
                memory_mib=memory,
                memtune_hard_limit_mib=limit,
            ),
            cluster=values,
            source=by_pk[host_id],
            destination=destination_of[host_id],
            defaults=defaults,
        )
        codes = tuple(decision.code for decision in plan.decisions)
        key = (plan.zerocopy, plan.parallel_connections is not None, codes)
        members[key].extend(vm_ids)
        if key not in groups:
            groups[key] = {
                "zerocopy": plan.zerocopy,
                "parallel": plan.parallel_connections is not None,
                "codes": list(codes),
                "outcome": _outcome_label(zerocopy=plan.zerocopy, parallel=plan.parallel_connections is not None),
                "reasons": [DECISION_REASONS[code] for code in codes],
            }
    result = []
    for key, group in groups.items():
        count = len(members[key])
        because = f", because {'; '.join(group['reasons'])}" if group["reasons"] else ""
        noun = "VM" if count == 1 else "VMs"
        result.append(
            {"count": count, "vms": members[key], **group, "label": f"{count} {noun} {group['outcome']}{because}."}
        )
    # Zero-copy first, then the largest groups.
    result.sort(key=lambda g: (not g["zerocopy"], not g["parallel"], -g["count"], g["codes"]))
    return {
        "total_vms": total,
        "policy": {"id": str(candidate.migration_policy_id), "name": candidate.migration_policy.name},
        "groups": result,
    }
