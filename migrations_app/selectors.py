"""Reads for migrations: the plan of a VM's migration, and job lists."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum

from clusters.models import VM, Cluster, Host, HostStatus, VMStatus
from clusters.reports import agent_report
from migrations_app.models import ACTIVE_STATES, JobState, MigrationJob
from migrations_app.resolver import (
    ClusterValues,
    DecisionCode,
    Defaults,
    HostValues,
    Plan,
    PolicyValues,
    VMValues,
    resolve_plan,
)
from policies.models import MigrationPolicy


def policy_values(policy: MigrationPolicy) -> PolicyValues:
    return PolicyValues(
        id=str(policy.pk),
        name=policy.name,
        max_migrations=policy.max_migrations,
        auto_convergence=policy.auto_convergence,
        migration_compression=policy.migration_compression,
        zerocopy=policy.zerocopy,
        convergence=policy.convergence,
    )


def cluster_values(cluster: Cluster) -> ClusterValues:
    return ClusterValues(
        compatibility_version=cluster.compatibility_version.level,
        parallel_migrations_supported=cluster.compatibility_version.parallel_migrations_supported,
        policy=policy_values(cluster.migration_policy),
        migration_bandwidth=cluster.migration_bandwidth,
        migration_bandwidth_custom_mbps=cluster.migration_bandwidth_custom_mbps,
        migration_auto_converge=cluster.migration_auto_converge,
        migration_compressed=cluster.migration_compressed,
        migration_encrypted=cluster.migration_encrypted,
        parallel_migrations_policy=cluster.parallel_migrations_policy,
        custom_parallel_migrations=cluster.custom_parallel_migrations,
    )


def host_values(host: Host) -> HostValues:
    caps = host.capabilities or {}
    return HostValues(
        address=host.address,
        destination_uri=host.destination_uri,
        link_speed_mbps=caps.get("link_speed_mbps"),
        zerocopy_migrations=caps.get("zerocopy_migrations"),
        parallel_migrations=caps.get("parallel_migrations"),
        name=host.name,
        max_bandwidth_mib_s=caps.get("migration_max_bandwidth_mib_s"),
        addresses=tuple(host.reported_addresses),
        memlock_enforced=caps.get("memlock_enforced"),
        migration_pulse_s=caps.get("migration_pulse_s"),
        migration_stall_s=caps.get("migration_stall_s"),
        migration_timeout_s=caps.get("migration_timeout_s"),
    )


def vm_values(vm: VM) -> VMValues:
    return VMValues(
        vcpus=vm.vcpus,
        policy=policy_values(vm.migration_policy) if vm.migration_policy is not None else None,
        parallel_migrations_policy=vm.parallel_migrations_policy,
        custom_parallel_migrations=vm.custom_parallel_migrations,
        migration_encrypted=vm.migration_encrypted,
        paused=vm.status == VMStatus.PAUSED,
        memory_mib=vm.memory_mib,
        memtune_hard_limit_mib=vm.memtune_hard_limit_mib,
        name=vm.name,
    )


def global_defaults() -> Defaults:
    return Defaults(
        auto_converge=settings.FERRY_DEFAULT_AUTO_CONVERGE,
        compressed=settings.FERRY_DEFAULT_COMPRESSED,
        encrypted=settings.FERRY_DEFAULT_ENCRYPTED,
    )


def vm_for_planning(vm_id) -> VM:
    return VM.objects.select_related(
        "migration_policy",
        "host__cluster__compatibility_version",
        "host__cluster__migration_policy",
    ).get(pk=vm_id)


def migration_plan(*, vm: VM, destination: Host) -> Plan:
    """The plan for migrating `vm` from its current host to `destination`."""
    source = vm.host
    return resolve_plan(
        vm=vm_values(vm),
        cluster=cluster_values(source.cluster),
        source=host_values(source),
        destination=host_values(destination),
        defaults=global_defaults(),
    )


def job_list() -> QuerySet[MigrationJob]:
    return MigrationJob.objects.select_related("vm", "source_host", "destination_host", "created_by")


def host_free_memory(hosts) -> dict:
    """MiB each host can still take, by host id: its reported memory minus the memory of the VMs
    recorded on it (all but those down) and of the VMs an active job is bringing to it. A host
    that has not reported its memory is absent: Ferry does not guess."""
    ids = [host.pk for host in hosts]
    used: dict = dict(
        VM.objects.filter(host_id__in=ids)
        .exclude(status=VMStatus.DOWN)
        .values("host_id")
        .annotate(total=Sum("memory_mib"))
        .values_list("host_id", "total")
    )
    coming: dict = dict(
        MigrationJob.objects.filter(destination_host_id__in=ids, state__in=ACTIVE_STATES)
        .values("destination_host_id")
        .annotate(total=Sum("vm__memory_mib"))
        .values_list("destination_host_id", "total")
    )
    free = {}
    for host in hosts:
        reported = (host.capabilities or {}).get("memory_mib")
        if isinstance(reported, int) and not isinstance(reported, bool):
            free[host.pk] = reported - (used.get(host.pk) or 0) - (coming.get(host.pk) or 0)
    return free


def destination_search(vm: VM, *, exclude=()) -> tuple[Host | None, list[str]]:
    """Where to migrate `vm` when the caller names no host, and why the other hosts of its cluster
    were passed over: a host that is up (not preparing for maintenance), has reported its memory
    and has room for the VM; of those, the one with the most free memory (then the fewest
    incoming migrations, then by name). `exclude`: ids of hosts not to consider at all (a rerun
    leaves out the host its migration failed to)."""
    hosts = list(
        Host.objects.select_related("cluster")
        .filter(cluster_id=vm.host.cluster_id)
        .exclude(pk=vm.host_id)
        .exclude(pk__in=list(exclude))
        .annotate(incoming=Count("incoming_jobs", filter=Q(incoming_jobs__state__in=ACTIVE_STATES)))
        .order_by("name")
    )
    free = host_free_memory(hosts)
    passed: list[str] = []
    fitting: list[tuple[int, int, str, Host]] = []
    for host in hosts:
        if host.status != HostStatus.UP:
            passed.append(f"{host.name} is {host.get_status_display().lower()}")
        elif host.pk not in free:
            passed.append(f"{host.name} has not reported its memory")
        elif free[host.pk] < vm.memory_mib:
            passed.append(f"{host.name} has {max(free[host.pk], 0)} MiB free, {vm.name} needs {vm.memory_mib} MiB")
        else:
            fitting.append((-free[host.pk], host.incoming, host.name, host))
    if not fitting:
        return None, passed
    return min(fitting, key=lambda item: item[:3])[3], passed


def destination_unavailable(vm: VM, passed: list[str]) -> str:
    """Why Ferry cannot choose a destination for `vm`, as one sentence."""
    return f"No host can take {vm.name}: {'; '.join(passed) or 'the cluster has no other host'}."


def destination_chosen_message(vm: VM, destination: Host, passed: list[str], *, rerun_of: Host | None = None) -> str:
    """The plan's destination_chosen decision: which host Ferry chose for `vm`, and why not the others."""
    free = host_free_memory([destination]).get(destination.pk)
    room = f" with {free} MiB free" if free is not None else ""
    why = "the host that is up with the most free memory for its" if not rerun_of else "the next host that can take its"
    message = f"Ferry chose {destination.name}{room}, {why} {vm.memory_mib} MiB"
    if rerun_of is not None:
        message += f", to run the migration again after it failed to {rerun_of.name}"
    message += "."
    if passed:
        message += " Passed over: " + "; ".join(passed) + "."
    return message


def destination_automatic(vm: VM, *, failed_to: Host | None = None) -> tuple[Host | None, str]:
    """The host Ferry chooses for `vm` (not `failed_to`, the host a failed attempt went to), with
    the sentence that says why (the destination_chosen decision); or None with why no host can."""
    destination, passed = destination_search(vm, exclude=[failed_to.pk] if failed_to is not None else [])
    if destination is None:
        return None, destination_unavailable(vm, passed)
    return destination, destination_chosen_message(vm, destination, passed, rerun_of=failed_to)


def automatic_plan(*, vm: VM, destination: Host, reason: str) -> dict:
    """The plan to a host Ferry chose, its choice first among the decisions."""
    plan = migration_plan(vm=vm, destination=destination).to_dict()
    plan["decisions"].insert(0, {"code": DecisionCode("destination_chosen").value, "message": reason})
    return plan


def destination_choose(vm: VM) -> Host | None:
    """The host destination_search chooses for `vm`, or None when no host can take it."""
    return destination_search(vm)[0]


def job_waiting(job: MigrationJob, *, hosts: dict | None = None) -> str | None:
    """Why a queued job is not starting, when nobody serves its queue: its source host's agent
    (or, with FERRY_HOST_QUEUES=false, the worker acting for every host) has stopped reporting.
    None while the job is not queued, or its queue is served. `hosts` caches hosts by id."""
    if job.state != JobState.QUEUED or job.source_host_id is None:
        return None
    if job.dispatched_at is None:
        from migrations_app.dispatch import blocking_host

        side = blocking_host(job)
        if side == "source":
            return f"Waiting: the source host runs its limit of {job.plan.get('outgoing_limit')} migration(s) at once."
        if side == "destination":
            return (
                f"Waiting: the destination host receives its limit of {job.plan.get('incoming_limit')} "
                "migration(s) at once."
            )
        return "Waiting for the broker: the job is stored and is sent as soon as the broker answers."
    cache = {} if hosts is None else hosts
    if job.source_host_id not in cache:
        cache[job.source_host_id] = (
            Host.objects.only("id", "name", "status", "capabilities_updated_at").filter(pk=job.source_host_id).first()
        )
    host = cache[job.source_host_id]
    if host is None:
        return None
    report = agent_report(host)
    if not report.silent:
        return None
    server = "agent" if settings.FERRY_HOST_QUEUES else "worker"
    return f"Waiting: no {server} serves {report.queue} ({host.name}'s agent {report.summary})."


def dashboard_summary() -> dict:
    hosts = Host.objects.aggregate(
        up=Count("pk", filter=Q(status=HostStatus.UP)), down=Count("pk", filter=~Q(status=HostStatus.UP))
    )
    jobs = MigrationJob.objects.select_related("vm", "source_host", "destination_host")
    return {
        "clusters": Cluster.objects.count(),
        "hosts_up": hosts["up"],
        "hosts_down": hosts["down"],
        "vms": VM.objects.count(),
        "migrations_running": MigrationJob.objects.filter(state__in=ACTIVE_STATES).count(),
        "active_jobs": jobs.filter(state__in=ACTIVE_STATES).order_by("-created_at")[:10],
        "recent_failures": jobs.filter(state=JobState.FAILED).order_by("-finished_at")[:5],
        "hosts_not_up": Host.objects.exclude(status=HostStatus.UP).select_related("cluster")[:10],
    }
