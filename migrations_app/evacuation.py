"""Maintenance that empties a host, as in oVirt (issue 15).

host_evacuate: the host becomes preparing_for_maintenance and every VM running on it gets a
migration job to the host Ferry chooses (migrations_app.selectors.destination_search), started
with migration_start: the plan is frozen with the cluster's policy, and the outbox
(migrations_app.dispatch) sends only the jobs the plans' per-host limits let start, and the next
waiting one when a job ends. Nothing here waits or retries on a timer.

evacuation_check decides the host's state whenever that may have changed (at the start, and where
a job of the evacuation, or one coming to the host, ends: agent_services.migration_finish): no
running VM left on the host and none on its way to it, the host is in maintenance; a VM that
cannot be moved (no host with room, its job failed or was cancelled) leaves it
preparing_for_maintenance with the reason in its status_reason. Asking for maintenance again
tries the VMs left again. Activating the host cancels the evacuation (evacuation_stop): its
queued jobs are cancelled, running ones finish.

A VM counts as on the host while it runs there (up, paused, migrating); a VM that is down or
unknown uses no memory there and does not hold the host back.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from clusters.models import VM, ErrorHandling, Host, HostStatus, VMStatus
from clusters.services import _host_set, status_reason
from core.audit import Actor, audit_record, snapshot
from migrations_app.models import ACTIVE_STATES, Evacuation, JobState, MigrationJob

logger = logging.getLogger(__name__)

RUNNING_VM_STATES = (VMStatus.UP, VMStatus.PAUSED, VMStatus.MIGRATING)
CHECK = "evacuation"


def active_evacuation(host_id) -> Evacuation | None:
    return Evacuation.objects.filter(host_id=host_id, ended_at__isnull=True).first()


def _running_vms(host_id):
    return VM.objects.filter(host_id=host_id, status__in=RUNNING_VM_STATES)


def host_evacuate(*, actor: Actor, host: Host) -> Host:
    """Put the host into maintenance by migrating its VMs away (see the module). A host already in
    maintenance stays as it is; a host already preparing tries its VMs left without a job again."""

    def decide(stored: Host) -> dict[str, Any]:
        if stored.status in (HostStatus.MAINTENANCE, HostStatus.PREPARING_FOR_MAINTENANCE):
            return {}
        return {"status": HostStatus.PREPARING_FOR_MAINTENANCE, "status_reason": {}}

    with transaction.atomic():
        host = _host_set(actor=actor, host=host, action="maintenance", decide=decide)
        if host.status == HostStatus.MAINTENANCE:
            return host
        # Nothing new comes to a host being emptied: queued migrations to it are cancelled.
        _cancel_queued(actor, MigrationJob.objects.filter(destination_host=host, state=JobState.QUEUED))
        running = _running_vms(host.pk)
        evacuation = _evacuation_open(actor, host, Evacuation.Trigger.MAINTENANCE, running)
        notes = _place(actor, host, evacuation, running)
        return evacuation_check(actor=actor, host_id=host.pk, notes=notes) or host


def host_failed_evacuate(*, actor: Actor, host: Host) -> Evacuation | None:
    """The host failed while its agent still answers (agent_services.report_capabilities): move
    the VMs its cluster's error handling names ("migrate": all, "migrate_highly_available": the
    highly available ones, "do_not_migrate": none) with the same machinery. The host's status is
    monitoring's; the evacuation ends when its jobs have. None: nothing to move."""
    host = Host.objects.select_related("cluster").get(pk=host.pk)
    handling = host.cluster.error_handling
    running = _running_vms(host.pk)
    if handling == ErrorHandling.DO_NOT_MIGRATE:
        logger.info("host %s failed: its cluster's error handling migrates no VM", host.name)
        return None
    if handling == ErrorHandling.MIGRATE_HIGHLY_AVAILABLE:
        running = running.filter(highly_available=True)
    if not running.exists() or active_evacuation(host.pk) is not None:
        return None  # nothing to move, or an evacuation already moves them
    with transaction.atomic():
        evacuation = _evacuation_open(actor, host, Evacuation.Trigger.ERROR_HANDLING, running)
        notes = _place(actor, host, evacuation, running)
        for note in notes.values():
            logger.warning("host %s failed: %s", host.name, note)
        evacuation_check(actor=actor, host_id=host.pk)
    return evacuation


def _evacuation_open(actor: Actor, host: Host, trigger: str, running) -> Evacuation:
    """The host's active evacuation of this trigger, or a new one. Maintenance takes over an
    evacuation the error handling started (it ends, and maintenance moves every VM)."""
    evacuation = active_evacuation(host.pk)
    if evacuation is not None and evacuation.trigger == trigger:
        return evacuation
    if evacuation is not None:
        _evacuation_end(actor, evacuation, Evacuation.Outcome.DONE)
    memory = running.aggregate(total=Sum("memory_mib"))["total"] or 0
    evacuation = Evacuation.objects.create(
        host=host, trigger=trigger, started_by=actor.user, vm_count=running.count(), memory_mib=memory
    )
    audit_record(actor=actor, action="evacuate", instance=evacuation, before=None, after=snapshot(evacuation))
    return evacuation


def _place(actor: Actor, host: Host, evacuation: Evacuation, vms) -> dict[Any, str]:
    """A job for each of `vms` without one, to the host Ferry chooses; why each other one has none."""
    from migrations_app.selectors import destination_search, vm_for_planning
    from migrations_app.services import MigrationConflict, migration_start

    moving = MigrationJob.objects.filter(state__in=ACTIVE_STATES, source_host=host).values_list("vm_id", flat=True)
    notes: dict[Any, str] = {}
    for vm_id in (
        vms.exclude(pk__in=list(moving)).order_by("-priority", "-memory_mib", "name").values_list("pk", flat=True)
    ):
        vm = vm_for_planning(vm_id)
        destination, passed = destination_search(vm)
        if destination is None:
            why = "; ".join(passed) or "the cluster has no other host"
            notes[vm.pk] = f"{vm.name}: no host can take it ({why})"
            continue
        try:
            # Ferry chooses again in migration_start (the same host), which marks the job as its own
            # choice: a failure is then run again on the next host.
            migration_start(actor=actor, vm=vm, destination=None, evacuation=evacuation)
        except (ValidationError, MigrationConflict) as error:
            notes[vm.pk] = f"{vm.name}: {' '.join(getattr(error, 'messages', [str(error)]))}"
    logger.info("evacuation of %s: %d VM(s) could not be placed", host.name, len(notes))
    return notes


def _evacuation_end(actor: Actor, evacuation: Evacuation, outcome: str) -> None:
    before = snapshot(evacuation)
    ended = Evacuation.objects.filter(pk=evacuation.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(), outcome=outcome
    )
    if ended:
        evacuation.refresh_from_db()
        action = "done" if outcome == Evacuation.Outcome.DONE else "cancel"
        audit_record(actor=actor, action=action, instance=evacuation, before=before, after=snapshot(evacuation))


def evacuation_check(*, actor: Actor, host_id, notes: dict[Any, str] | None = None) -> Host | None:
    """Decide the state of the host's active evacuation, if any (see the module). Returns the host."""
    evacuation = active_evacuation(host_id)
    if evacuation is None:
        return None
    host = Host.objects.get(pk=host_id)
    if evacuation.trigger == Evacuation.Trigger.ERROR_HANDLING:
        if not evacuation.jobs.filter(state__in=ACTIVE_STATES).exists():
            _evacuation_end(actor, evacuation, Evacuation.Outcome.DONE)
        return host
    running = _running_vms(host_id)
    coming = MigrationJob.objects.filter(destination_host_id=host_id, state__in=ACTIVE_STATES)
    if not running.exists() and not coming.exists():
        _evacuation_end(actor, evacuation, Evacuation.Outcome.DONE)

        def done(stored: Host) -> dict[str, Any]:
            if stored.status != HostStatus.PREPARING_FOR_MAINTENANCE:
                return {}
            return {"status": HostStatus.MAINTENANCE, "status_reason": {}}

        return _host_set(actor=actor, host=host, action="maintenance_reached", decide=done)
    moving = set(
        MigrationJob.objects.filter(state__in=ACTIVE_STATES, source_host_id=host_id).values_list("vm_id", flat=True)
    )
    stuck = [vm for vm in running.order_by("name") if vm.pk not in moving]
    if not stuck:
        return host
    reasons = [(notes or {}).get(vm.pk) or _why_not_moved(vm, evacuation) for vm in stuck]
    message = (
        f"{len(stuck)} VM(s) cannot be moved off the host, so it is not in maintenance yet: "
        + "; ".join(reasons)
        + ". Put the host into maintenance again to retry, or activate it."
    )
    reason = status_reason(check=CHECK, message=message)

    def stay(stored: Host) -> dict[str, Any]:
        if stored.status != HostStatus.PREPARING_FOR_MAINTENANCE:
            return {}
        return {"status_reason": reason}

    return _host_set(actor=actor, host=host, action="evacuation_blocked", decide=stay)


def _why_not_moved(vm: VM, evacuation: Evacuation) -> str:
    job = evacuation.jobs.filter(vm=vm).order_by("-created_at").first()
    if job is None:
        return f"{vm.name}: arrived during the evacuation, or was not running when it started"
    if job.state == JobState.FAILED:
        return f"{vm.name}: its migration failed ({(job.error or {}).get('message') or 'no reason given'})"
    if job.state == JobState.CANCELLED:
        return f"{vm.name}: its migration was cancelled"
    return f"{vm.name}: its migration {job.get_state_display().lower()} but the VM is still here"


def evacuation_stop(*, actor: Actor, host: Host) -> Evacuation | None:
    """The host is activated: its evacuation ends, its queued jobs are cancelled (running ones finish)."""
    with transaction.atomic():
        evacuation = active_evacuation(host.pk)
        if evacuation is None:
            return None
        _cancel_queued(actor, evacuation.jobs.filter(state=JobState.QUEUED))
        _evacuation_end(actor, evacuation, Evacuation.Outcome.CANCELLED)
    return evacuation


def _cancel_queued(actor: Actor, jobs) -> None:
    from migrations_app.services import migration_cancel

    for job in list(jobs):
        with contextlib.suppress(ValidationError):  # it ended meanwhile
            migration_cancel(actor=actor, job=job)


def evacuation_progress(host: Host) -> dict[str, Any] | None:
    """The host's latest evacuation in figures (None: it never had one)."""
    evacuation = Evacuation.objects.filter(host=host).order_by("-started_at").first()
    if evacuation is None:
        return None
    # A failed job that was run again counts through its rerun: one attempt per VM.
    states = dict(
        evacuation.jobs.filter(reruns__isnull=True)
        .values("state")
        .annotate(total=Count("pk"))
        .values_list("state", "total")
    )
    on_host = _running_vms(host.pk)
    return {
        "id": str(evacuation.pk),
        "trigger": evacuation.trigger,
        "outcome": evacuation.outcome,
        "started_at": evacuation.started_at,
        "ended_at": evacuation.ended_at,
        "vms": evacuation.vm_count,
        "memory_mib": evacuation.memory_mib,
        "moved": states.get(JobState.SUCCEEDED, 0),
        "running": states.get(JobState.RUNNING, 0),
        "waiting": states.get(JobState.QUEUED, 0),
        "failed": states.get(JobState.FAILED, 0) + states.get(JobState.CANCELLED, 0),
        "vms_left": on_host.count(),
        "memory_left_mib": on_host.aggregate(total=Sum("memory_mib"))["total"] or 0,
    }
