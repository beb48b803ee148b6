"""Writes for migration jobs: start (freeze the plan, enqueue on commit) and cancel; and the
agent tokens with which each host's agent reaches the agent API.

The host side (running a job on libvirt) is the host's agent (ferry_agent); what it reports reaches
Ferry through migrations_app.agent_services.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.models import VM, Host, HostStatus, VMStatus
from core.audit import Actor, audit_record, snapshot
from core.rules import Rule, rule_error
from core.services import ConflictError
from ferry_common import logs
from migrations_app.models import (
    ACTIVE_STATES,
    AgentToken,
    Evacuation,
    JobState,
    MigrationJob,
    correlation_id_validator,
)
from migrations_app.selectors import automatic_plan, destination_automatic, migration_plan

logger = logging.getLogger(__name__)

#: A paused VM migrates too (as in oVirt), without post-copy (the resolver drops it).
MIGRATABLE_VM_STATES = (VMStatus.UP, VMStatus.PAUSED)


class MigrationConflict(ConflictError):
    """The VM already has an active migration job."""


def check_destination_in_cluster(vm: VM, destination: Host) -> None:
    """A destination can be planned for: another host of the VM's cluster."""
    if destination.pk == vm.host_id:
        raise ValidationError(
            {"destination_host": rule_error(Rule.DESTINATION_IS_SOURCE, "The destination is the VM's current host.")}
        )
    if destination.cluster_id != vm.host.cluster_id:
        raise ValidationError(
            {
                "destination_host": rule_error(
                    Rule.DESTINATION_OTHER_CLUSTER, "The destination host is in another cluster."
                )
            }
        )


def _check_destination(vm: VM, destination: Host) -> None:
    if vm.status not in MIGRATABLE_VM_STATES:
        raise ValidationError(
            {
                "vm": rule_error(
                    Rule.VM_NOT_MIGRATABLE,
                    f"Only a running or paused VM can be migrated; {vm.name} is {vm.get_status_display()}.",
                )
            }
        )
    check_destination_in_cluster(vm, destination)
    if vm.host.status == HostStatus.ACTIVATING:
        raise ValidationError(
            {
                "vm": rule_error(
                    Rule.SOURCE_ACTIVATING,
                    f"The VM's host {vm.host.name} is activating: it is up once its agent reports.",
                )
            }
        )
    if destination.status != HostStatus.UP:
        raise ValidationError(
            {
                "destination_host": rule_error(
                    Rule.DESTINATION_NOT_UP,
                    f"The destination host {destination.name} is {destination.get_status_display()}.",
                )
            }
        )


def migration_start(
    *,
    actor: Actor,
    vm: VM,
    destination: Host | None,
    correlation_id: str | None = None,
    evacuation: Evacuation | None = None,
    rerun_of: MigrationJob | None = None,
) -> MigrationJob:
    """Freeze the plan on a new queued job; the source host's task is enqueued after commit.

    `destination` None: Ferry chooses (destination_search), says so in the plan's decisions
    (destination_chosen, with the hosts it passed over), and runs the migration once more on the
    next host if it fails (migration_rerun); ValidationError when no host can take the VM.
    `correlation_id` is the caller's own id for the request (the oVirt API's), stored to find the job by.
    `evacuation`: the evacuation of the VM's host that asks for it (migrations_app.evacuation).
    `rerun_of`: the failed job this one runs again, on a host other than its destination.
    """
    from migrations_app.dispatch import dispatch_ready

    if correlation_id is not None:
        try:
            correlation_id_validator(correlation_id)
        except ValidationError as error:
            raise ValidationError({"correlation_id": error.error_list}) from None
    automatic = destination is None
    if destination is None:
        failed_to = rerun_of.destination_host if rerun_of is not None else None
        destination, reason = destination_automatic(vm, failed_to=failed_to)
        if destination is None:
            raise ValidationError({"destination_host": rule_error(Rule.NO_DESTINATION, reason)})
        _check_destination(vm, destination)
        plan = automatic_plan(vm=vm, destination=destination, reason=reason)
    else:
        _check_destination(vm, destination)
        plan = migration_plan(vm=vm, destination=destination).to_dict()
    job = MigrationJob(
        vm=vm,
        source_host=vm.host,
        destination_host=destination,
        correlation_id=correlation_id,
        evacuation=evacuation,
        automatic=automatic,
        rerun_of=rerun_of,
        plan=plan,
        created_by=rerun_of.created_by if rerun_of is not None else actor.user,
    )
    # The job's id on its lines here and on its task's message (ferry_common.logs).
    with logs.bound(job_id=str(job.pk)):
        for decision in plan["decisions"]:
            logger.info("migration of %s: %s: %s", vm.name, decision["code"], decision["message"])
        try:
            with transaction.atomic():
                job.save(force_insert=True)
                audit_record(actor=actor, action="migrate", instance=job, before=None, after=snapshot(job))
                # The outbox: sent once committed, if the hosts have a free slot and the broker
                # answers; otherwise the scheduler sends it later (migrations_app.dispatch).
                hosts = {vm.host_id, destination.pk}
                transaction.on_commit(lambda: dispatch_ready(host_ids=hosts))
        except IntegrityError:
            if MigrationJob.objects.filter(vm=vm, state__in=ACTIVE_STATES).exists():
                raise MigrationConflict(f"{vm.name} already has an active migration.") from None
            raise
        policy = plan["policy"]["name"]
        logger.info("migration %s of %s queued: %s -> %s, policy %s", job.pk, vm.name, vm.host, destination, policy)
    return job


#: How many VMs one bulk request may name.
BULK_MIGRATE_MAX = 500


@dataclass(frozen=True)
class BulkOutcome:
    """One VM's answer in a bulk migration: its job, or why it has none."""

    vm_id: Any
    vm_name: str | None
    job: MigrationJob | None = None
    status: int = 202  # as the one-VM action answers: 202, 400 (refused), 404 (no such VM), 409 (active job)
    reasons: dict[str, list[str]] | None = None


def migrations_start_many(*, actor: Actor, vm_ids: list, destination: Host | None) -> list[BulkOutcome]:
    """A migration for each VM (in the order given, each once), each on its own, as
    migration_start: one VM's refusal does not stop the others. `destination` None: Ferry
    chooses for each VM (and a failed one is run again on the next host)."""
    found = {vm.pk: vm for vm in VM.objects.select_related("host__cluster").filter(pk__in=list(vm_ids))}
    outcomes = []
    for vm_id in dict.fromkeys(vm_ids):
        vm = found.get(vm_id)
        if vm is None:
            outcomes.append(BulkOutcome(vm_id, None, status=404, reasons={"vm": ["No such VM."]}))
            continue
        vm = VM.objects.select_related(
            "migration_policy", "host__cluster__compatibility_version", "host__cluster__migration_policy"
        ).get(pk=vm_id)
        try:
            job = migration_start(actor=actor, vm=vm, destination=destination)
        except MigrationConflict as conflict:
            outcomes.append(BulkOutcome(vm_id, vm.name, status=409, reasons={"vm": [str(conflict)]}))
        except ValidationError as error:
            messages = error.message_dict if hasattr(error, "error_dict") else {"vm": error.messages}
            outcomes.append(BulkOutcome(vm_id, vm.name, status=400, reasons=dict(messages)))
        else:
            outcomes.append(BulkOutcome(vm_id, vm.name, job=job))
    return outcomes


#: Failures after which the VM is not known to be running on its source host: no rerun.
NOT_RERUN_ERRORS = frozenset({"agent_lost", "vm_not_found"})


def migration_rerun(*, actor: Actor, job: MigrationJob) -> MigrationJob | None:
    """Run a failed job whose destination Ferry chose once more, on the next host Ferry chooses
    (not the one it failed to), as oVirt's engine reruns a migration. A job the caller sent to a
    named host, a cancelled job and a rerun are not run again. Called in the transaction that
    ends `job`; returns the new job, or None (why is in the audit trail and the log)."""
    if job.state != JobState.FAILED or not job.automatic or job.rerun_of_id is not None:
        return None
    if (job.error or {}).get("code") in NOT_RERUN_ERRORS:
        return None
    if job.evacuation is not None and job.evacuation.outcome == Evacuation.Outcome.CANCELLED:
        return None  # the host was activated: its VMs stay
    vm = VM.objects.select_related(
        "migration_policy", "host__cluster__compatibility_version", "host__cluster__migration_policy"
    ).get(pk=job.vm_id)
    try:
        with transaction.atomic():
            rerun = migration_start(actor=actor, vm=vm, destination=None, evacuation=job.evacuation, rerun_of=job)
    except (ValidationError, MigrationConflict, IntegrityError) as error:
        why = " ".join(getattr(error, "messages", [str(error)]))
        audit_record(actor=actor, action="rerun", instance=job, before=None, after={"rerun": None, "reason": why})
        logger.info("migration %s of %s failed and is not run again: %s", job.pk, vm.name, why)
        return None
    audit_record(actor=actor, action="rerun", instance=job, before=None, after={"rerun": str(rerun.pk)})
    logger.info("migration %s of %s failed; run again as %s to %s", job.pk, vm.name, rerun.pk, rerun.destination_host)
    return rerun


def migration_cancel(*, actor: Actor, job: MigrationJob) -> MigrationJob:
    """A queued job ends at once; a running one is asked to stop (its host task aborts libvirt's job)."""
    with logs.bound(job_id=str(job.pk)), transaction.atomic():
        stored = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if stored.state not in ACTIVE_STATES:
            raise ValidationError(
                {
                    "state": rule_error(
                        Rule.JOB_ENDED, f"This migration has already ended ({stored.get_state_display()})."
                    )
                }
            )
        before = snapshot(stored)
        now = timezone.now()
        ended = MigrationJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
            state=JobState.CANCELLED,
            cancel_requested=True,
            finished_at=now,
        )
        if not ended:
            MigrationJob.objects.filter(pk=job.pk).update(cancel_requested=True)
        stored.refresh_from_db()
        if not ended and _agent_silent(stored, now):
            # Nobody is watching the job to see the cancel: its agent is asked to end it from
            # libvirt's real state (abort if libvirt still migrates) as soon as it answers.
            from migrations_app.host_tasks import request_reconcile

            transaction.on_commit(lambda: request_reconcile(stored))
        audit_record(actor=actor, action="cancel", instance=stored, before=before, after=snapshot(stored))
        logger.info("migration %s: %s by %s", job.pk, "cancelled" if ended else "cancel requested", actor.name)
    return stored


def _agent_silent(job: MigrationJob, now) -> bool:
    last = job.heartbeat_at or job.started_at
    return last is None or (now - last).total_seconds() > settings.FERRY_HEARTBEAT_TIMEOUT_S


def agent_key_hash(key: str) -> str:
    """What is stored of an agent token's key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def agent_token_issue(*, actor: Actor, host: Host) -> tuple[AgentToken, str]:
    """A new agent token for the host; the previous one stops working. Returns the token and its
    key, which is shown once and never stored (nor audited)."""
    key = secrets.token_urlsafe(32)  # 256 random bits
    with transaction.atomic():
        Host.objects.select_for_update().get(pk=host.pk)
        replaced = AgentToken.objects.filter(host=host).delete()[0] > 0
        token = AgentToken.objects.create(
            host=host, key_hash=agent_key_hash(key), created_by=actor.user, created=timezone.now()
        )
        audit_record(
            actor=actor,
            action="agent_token",
            instance=host,
            before=None,
            after={"agent_token_created": token.created.isoformat(), "replaced_previous": replaced},
        )
    logger.info("agent token of host %s issued by %s", host.name, actor.name)
    return token, key
