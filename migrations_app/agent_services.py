"""The server side of the agent API (docs/agent-api.md): the only way a host's agent reads and
writes Ferry's state.

Each public function takes the acting Host first (the one whose agent token was presented, or,
in the embedded worker of `make run`, the host a task names) and refuses with AgentForbidden
anything that is not that host's: a job whose source is another host is neither read nor changed.
A malformed or partial payload is AgentBadRequest, and nothing is changed.

The agent only reports what libvirt said; every decision is taken here: whether a claim may
start (the plan's per-host limits), a job's outcome from the domain's states on both hosts,
which VM rows an inventory report may add, change or move. The database is written through
conditional UPDATEs, so a duplicate delivery, a cancel or a reconciler racing a running job
cannot move a job backwards or end it twice. Every change is audited in the same transaction.

Nothing here opens libvirt: the web side of Ferry never imports the agent's libvirt layer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from clusters.models import MEMTUNE_MAX_MIB, VM, Host, HostStatus, VMStatus
from clusters.services import host_mark_unreachable, host_report_capabilities, vm_create
from core.audit import Actor, audit_record, snapshot
from core.routing import host_queue
from migrations_app.dispatch import dispatch_ready, release
from migrations_app.evacuation import evacuation_check, host_failed_evacuate
from migrations_app.models import ACTIVE_STATES, JobState, MigrationJob
from migrations_app.progress import record_progress
from migrations_app.services import migration_rerun

logger = logging.getLogger(__name__)

__all__ = [
    "AgentBadRequest",
    "AgentForbidden",
    "host_info",
    "job_claim",
    "job_finish",
    "job_get",
    "job_progress",
    "job_reconcile",
    "report_capabilities",
    "report_inventory",
]

MIGRATE_ACTOR = Actor.task("ferry.migrate")
REFRESH_ACTOR = Actor.task("ferry.refresh_capabilities")
SYNC_ACTOR = Actor.task("ferry.sync_inventory")
RECONCILE_ACTOR = Actor.task("ferry.reconcile")
ACTIVE_DOMAIN_STATES = ("up", "paused", "migrating")
#: What an agent may say about a domain: its state, absent (None), or the host could not be read.
REPORTED_STATES = frozenset({*VMStatus.values, "unreachable"})
MAX_DOMAINS = 20_000
MAX_STATS_BYTES = 16 * 1024
MAX_MESSAGE = 1000
CHECK_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
RESULT_FLAGS = ("ok", "cancelled", "timed_out", "stalled", "refused", "aborted_by_schedule", "postcopy_started")


class AgentForbidden(Exception):
    """403: not this host's job or host; nothing was read or changed."""


class AgentBadRequest(Exception):
    """400: a malformed or partial payload; nothing was changed."""


class Claim(Enum):
    STARTED = "started"
    BUSY = "busy"  # a host's migration limit is reached: try again later
    NOT_QUEUED = "not_queued"  # a duplicate delivery, or cancelled before it started


# ------------------------------------------------------------------------------ the host itself
def host_info(host: Host) -> dict:
    """Who this agent is, and where Ferry sends its tasks."""
    return {
        "id": str(host.pk),
        "name": host.name,
        "libvirt_uri": host.libvirt_uri,
        "address": host.address,  # the migration address: the agent reports the speed of its NIC
        "queue": host_queue(host.pk),
    }


def report_capabilities(host: Host, payload: dict) -> dict:
    """{"capabilities": {...}} stores a full report (clusters.services decides what it changes);
    {"error": {"check", "message"}} says libvirt could not be read: the host is unreachable."""
    payload = _object(payload, "the report")
    if set(payload) == {"capabilities"}:
        capabilities = payload["capabilities"]
        if not isinstance(capabilities, dict) or not capabilities:
            raise AgentBadRequest("capabilities must be a non-empty object")
        try:
            host = host_report_capabilities(actor=REFRESH_ACTOR, host=host, capabilities=capabilities)
        except ValidationError as error:
            raise AgentBadRequest("; ".join(error.messages)) from None
        return {"status": host.status}
    if set(payload) == {"error"}:
        reason = _object(payload["error"], "error")
        check, message = reason.get("check"), reason.get("message")
        if not isinstance(check, str) or not CHECK_NAME.fullmatch(check) or not isinstance(message, str):
            raise AgentBadRequest('error must be {"check": <name>, "message": <text>}')
        logger.warning("host %s: its agent reports %s: %s", host.name, check, message[:MAX_MESSAGE])
        was_up = Host.objects.filter(pk=host.pk, status=HostStatus.UP).exists()
        host = _mark_unreachable(host, check=check, message=message[:MAX_MESSAGE])
        if was_up and host.status == HostStatus.NON_OPERATIONAL:
            # The host failed while its agent still answers: its cluster's error handling says
            # which of its VMs are moved off it (README, "When a host fails").
            host_failed_evacuate(actor=REFRESH_ACTOR, host=host)
        return {"status": host.status}
    raise AgentBadRequest('a report is either {"capabilities": {...}} or {"error": {...}}')


def _mark_unreachable(host: Host, *, check: str, message: str) -> Host:
    """The host is unreachable, with the agent's reason (which check failed, and how)."""
    return host_mark_unreachable(actor=REFRESH_ACTOR, host=host, check=check, message=message)


# ------------------------------------------------------------------------------ inventory
def report_inventory(host: Host, payload: dict) -> dict:
    """The host's libvirt domains, as its agent listed them. The rule (docs/agent-api.md):

    - an unknown UUID becomes a new VM on the reporting host; a VM recorded on the reporting host
      is updated from the report; one recorded there that the report no longer lists is marked
      unknown ("vanished");
    - a VM recorded on another host is never moved by this report, unless that host's own latest
      report no longer listed it (the VM is unknown) and the reporting host runs it ("moved");
      any other claim on it is refused: counted, logged and audited, nothing changed;
    - a VM with an active job is left to its job, whose outcome moves it.
    """
    domains = _domains(payload)
    counts = {"added": 0, "updated": 0, "moved": 0, "vanished": 0, "refused": 0}
    busy = set(MigrationJob.objects.filter(state__in=ACTIVE_STATES).values_list("vm_id", flat=True))
    known = {str(vm.uuid): vm for vm in VM.objects.select_related("host").filter(uuid__in=list(domains))}
    for vm_uuid, domain in domains.items():
        values = {
            "name": domain["name"],
            "memory_mib": max(1, domain["memory_mib"]),
            "vcpus": max(1, domain["vcpus"]),
            "status": domain["state"],
        }
        if "memtune_hard_limit_mib" in domain:  # an agent that does not read it leaves it as it was
            values["memtune_hard_limit_mib"] = domain["memtune_hard_limit_mib"]
        vm = known.get(vm_uuid)
        if vm is None:
            try:
                with transaction.atomic():
                    vm_create(actor=SYNC_ACTOR, data=values | {"uuid": vm_uuid, "host": host})
            except IntegrityError:
                continue  # a concurrent report of the same host added it first
            counts["added"] += 1
            continue
        if vm.pk in busy:
            continue
        if vm.host_id != host.pk:
            if domain["state"] not in ACTIVE_DOMAIN_STATES:
                continue  # a definition left behind (after a migration): it claims nothing
            if vm.status != VMStatus.UNKNOWN:
                _refuse_takeover(host, vm)
                counts["refused"] += 1
                continue
            values["host_id"] = host.pk
            counts["moved"] += 1
        changes = {key: value for key, value in values.items() if getattr(vm, key) != value}
        if changes:
            _vm_set(vm.pk, changes, actor=SYNC_ACTOR)
            if "host_id" not in changes:
                counts["updated"] += 1
    vanished = VM.objects.filter(host=host).exclude(pk__in=busy).exclude(status=VMStatus.UNKNOWN)
    for vm in vanished.exclude(uuid__in=list(domains)):
        _vm_set(vm.pk, {"status": VMStatus.UNKNOWN}, actor=SYNC_ACTOR)
        counts["vanished"] += 1
    return counts


def _refuse_takeover(host: Host, vm: VM) -> None:
    logger.warning(
        "host %s reported VM %s (%s), which host %s still reports: not moved",
        host.name,
        vm.name,
        vm.uuid,
        vm.host.name,
    )
    audit_record(
        actor=SYNC_ACTOR,
        action="takeover_refused",
        instance=vm,
        before=None,
        after={"reported_by": str(host.pk), "reported_by_name": host.name, "host": str(vm.host_id)},
    )


def _domains(payload: Any) -> dict[str, dict[str, Any]]:
    """The report's domains by UUID, every value checked; any fault refuses the whole report."""
    payload = _object(payload, "the report")
    domains = payload.get("domains")
    if set(payload) != {"domains"} or not isinstance(domains, list):
        raise AgentBadRequest('an inventory is {"domains": [...]}')
    if len(domains) > MAX_DOMAINS:
        raise AgentBadRequest(f"at most {MAX_DOMAINS} domains per report")
    out: dict[str, dict[str, Any]] = {}
    for index, domain in enumerate(domains):
        where = f"domains[{index}]"
        domain = _object(domain, where)
        try:
            vm_uuid = str(uuid.UUID(str(domain.get("uuid"))))
        except ValueError:
            raise AgentBadRequest(f"{where}.uuid is not a UUID") from None
        if vm_uuid in out:
            raise AgentBadRequest(f"{where}: UUID {vm_uuid} is listed twice")
        name = domain.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AgentBadRequest(f"{where}.name must be a non-empty string")
        if domain.get("state") not in VMStatus.values:
            raise AgentBadRequest(f"{where}.state must be one of {', '.join(VMStatus.values)}")
        checked = {
            "name": name[:100],
            "state": domain["state"],
            "memory_mib": _whole(domain.get("memory_mib"), f"{where}.memory_mib", high=64 * 1024 * 1024),
            "vcpus": _whole(domain.get("vcpus"), f"{where}.vcpus", high=4096),
        }
        if "memtune_hard_limit_mib" in domain:
            limit = domain["memtune_hard_limit_mib"]
            checked["memtune_hard_limit_mib"] = (
                None if limit is None else _whole(limit, f"{where}.memtune_hard_limit_mib", high=MEMTUNE_MAX_MIB)
            )
        out[vm_uuid] = checked
    return out


# ------------------------------------------------------------------------------ jobs
def job_claim(host: Host, job_id: str) -> dict:
    """queued -> running, at most once, within the plan's per-host limits; the job's order when
    it started."""
    job = _own_job(host, job_id)
    claim = migration_claim(job_id=str(job.pk))
    if claim is not Claim.STARTED:
        return {"claim": claim.value}
    # The order is what the job was created with (its plan is frozen): no need to read it again.
    return {
        "claim": claim.value,
        "job": {
            "id": str(job.pk),
            "vm_uuid": str(job.vm.uuid),
            "source_uri": host.libvirt_uri,
            "destination_monitor_uri": monitor_uri(job.destination_host) if job.destination_host else None,
            "plan": job.plan,
        },
    }


def job_progress(host: Host, job_id: str, payload: dict) -> dict:
    """A running job's progress and statistics; the answer says whether it is to be cancelled."""
    job = _own_job(host, job_id)
    payload = _object(payload, "the report")
    progress, stats = payload.get("progress"), payload.get("stats", {})
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise AgentBadRequest("progress must be a whole number from 0 to 100")
    # Never backwards, and 100 only when it succeeded; the heartbeat and a sample are kept.
    record_progress(job.pk, min(99, progress), _stats(stats))
    return {"cancel_requested": MigrationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()}


def job_finish(host: Host, job_id: str, payload: dict) -> dict:
    """The end of a running job as its agent saw it: the result of libvirt's call and the domain's
    state on both hosts. Ferry decides the terminal state; the VM follows it."""
    job = _own_job(host, job_id)
    payload = _object(payload, "the report")
    result = _object(payload.get("result"), "result")
    source_state = _reported_state(payload, "source_state")
    destination_state = _reported_state(payload, "destination_state")
    result = _checked_result(result)
    if job.state != JobState.RUNNING:
        return {"state": job.state}  # a duplicate report, or a job the reconciler already ended
    state, error = decide_outcome(source_state=source_state, destination_state=destination_state, result=result)
    logger.info(
        "migration %s of %s: %s (source %s, destination %s)",
        job.pk,
        job.vm.name,
        state,
        source_state,
        destination_state,
    )
    # The VM's state where it now runs, as libvirt said (a paused VM stays paused).
    where = destination_state if state == JobState.SUCCEEDED else source_state
    vm_state = where if where in (VMStatus.UP, VMStatus.PAUSED) else None
    migration_finish(job_id=str(job.pk), state=state, error=error, stats=_final_stats(result), vm_state=vm_state)
    return {"state": MigrationJob.objects.get(pk=job.pk).state}


def job_get(host: Host, job_id: str) -> dict:
    """What the reconcile task needs to read the domain on both hosts, and to follow a migration
    libvirt still runs: the plan's schedule and how many of its stalling steps already ran."""
    job = _own_job(host, job_id)
    actions = (job.stats or {}).get("actions") or []
    return {
        "id": str(job.pk),
        "state": job.state,
        "vm_uuid": str(job.vm.uuid),
        "source_uri": host.libvirt_uri,
        "destination_monitor_uri": monitor_uri(job.destination_host) if job.destination_host else None,
        "cancel_requested": job.cancel_requested,
        "convergence_schedule": job.plan.get("convergence_schedule") or {},
        "steps_done": sum(1 for action in actions if isinstance(action, dict) and action.get("phase") == "stalling"),
    }


def job_reconcile(host: Host, job_id: str, payload: dict) -> dict:
    """End a job whose task is gone, from the domain's state on both hosts as the agent read it."""
    job = _own_job(host, job_id)
    payload = _object(payload, "the report")
    source_state = _reported_state(payload, "source_state")
    destination_state = _reported_state(payload, "destination_state")
    if not isinstance(payload.get("aborted", False), bool):
        raise AgentBadRequest("aborted must be true or false")
    reason = payload.get("reason")
    if reason not in (None, "cancel", "schedule", "stalled"):
        raise AgentBadRequest('reason must be "cancel", "schedule", "stalled" or null')
    if job.state not in ACTIVE_STATES:
        return {"state": job.state}
    message = "The source host's agent stopped reporting on the migration; ended from libvirt's state."
    aborted = bool(payload.get("aborted"))
    result = {
        "ok": False,
        "error_code": None,
        "error_message": message,
        "cancelled": aborted and reason in (None, "cancel") and job.cancel_requested,
        "aborted_by_schedule": aborted and reason == "schedule",
        "stalled": aborted and reason == "stalled",
    }
    state, error = decide_outcome(source_state=source_state, destination_state=destination_state, result=result)
    if error is not None and error["code"] == "migration_failed":
        error = error | {"code": "reconciled"}
    migration_finish(job_id=str(job.pk), state=state, error=error, stats={}, actor=RECONCILE_ACTOR)
    return {"state": MigrationJob.objects.get(pk=job.pk).state}


def _own_job(host: Host, job_id: Any) -> MigrationJob:
    """The job, when its source is this host. A job that does not exist is refused the same way
    as another host's, so a token learns nothing about other hosts' jobs."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise AgentBadRequest("the job id is not a UUID") from None
    job = MigrationJob.objects.select_related("vm", "destination_host").filter(pk=pk).first()
    if job is None or job.source_host_id != host.pk:
        raise AgentForbidden(f"job {pk} is not a job of host {host.name}")
    return job


# ------------------------------------------------------------------------------ decisions
def monitor_uri(host: Host) -> str:
    """A URI that names this host's daemon from elsewhere: a bare local URI (qemu:///system) would
    name the caller's own daemon, so the peer URI is used instead."""
    uri = host.libvirt_uri
    if "://" in uri and (uri.split("://", 1)[1].split("/", 1)[0] or "socket=" in uri):
        return uri
    return host.destination_uri


def decide_outcome(
    *, source_state: str | None, destination_state: str | None, result: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """The job's end from the domain's real state (still active on the source: not moved)."""
    libvirt_error = {
        "code": "migration_failed",
        "message": result.get("error_message") or "The migration did not complete.",
        "libvirt_code": result.get("error_code"),
    }
    if result.get("refused"):
        # The source's agent refused the order before libvirt: nothing ran, the VM did not move.
        return JobState.FAILED, libvirt_error | {"code": "uri_refused"}
    if source_state in ACTIVE_DOMAIN_STATES:
        if result.get("cancelled"):
            return JobState.CANCELLED, None
        if result.get("timed_out"):
            return JobState.FAILED, libvirt_error | {
                "code": "timeout",
                "message": "The migration timed out and was aborted.",
            }
        if result.get("stalled"):
            return JobState.FAILED, libvirt_error | {
                "code": "stalled",
                "message": "The migration made no progress for too long (the stall watchdog) and was aborted.",
            }
        if result.get("aborted_by_schedule"):
            return JobState.FAILED, libvirt_error | {
                "code": "aborted_by_schedule",
                "message": "The policy's convergence schedule aborted the migration: it did not converge.",
            }
        if result.get("ok"):
            return JobState.FAILED, libvirt_error | {
                "message": "libvirt reported success, but the VM still runs on the source."
            }
        return JobState.FAILED, libvirt_error
    if destination_state in ("up", "paused"):
        return JobState.SUCCEEDED, None
    if destination_state == "unreachable" and source_state is None and result.get("ok"):
        return JobState.SUCCEEDED, None
    if source_state is None and destination_state is None:
        return JobState.FAILED, libvirt_error | {
            "code": "vm_not_found",
            "message": "The VM is defined on neither host after the migration. " + (result.get("error_message") or ""),
        }
    # A host could not be read: the call's own error is all that is known.
    return JobState.FAILED, libvirt_error


def migration_claim(*, job_id: str) -> Claim:
    """queued -> running, at most once, within the plan's per-host limits."""
    with transaction.atomic():
        job = MigrationJob.objects.filter(pk=job_id).first()
        if job is None or job.state != JobState.QUEUED:
            return Claim.NOT_QUEUED
        # Lock both hosts (in a fixed order) so concurrent claims count running jobs one at a time.
        host_ids = [pk for pk in (job.source_host_id, job.destination_host_id) if pk is not None]
        list(Host.objects.select_for_update().filter(pk__in=host_ids).order_by("pk"))
        # Read again under the locks: a duplicate delivery that waited for them behind the claim
        # that won must see the job running, not count it as another migration of its hosts.
        if not MigrationJob.objects.filter(pk=job_id, state=JobState.QUEUED).exists():
            return Claim.NOT_QUEUED
        counts = MigrationJob.objects.filter(
            Q(source_host_id=job.source_host_id) | Q(destination_host_id=job.destination_host_id),
            state=JobState.RUNNING,
        ).aggregate(
            outgoing=Count("pk", filter=Q(source_host_id=job.source_host_id)),
            incoming=Count("pk", filter=Q(destination_host_id=job.destination_host_id)),
        )
        if counts["outgoing"] >= job.plan["outgoing_limit"] or counts["incoming"] >= job.plan["incoming_limit"]:
            # Back to the outbox: it is sent again when one of its hosts' migrations ends.
            release(job.pk)
            return Claim.BUSY
        before = snapshot(job)
        now = timezone.now()
        started = MigrationJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.RUNNING, started_at=now, heartbeat_at=now
        )
        if not started:
            return Claim.NOT_QUEUED
        job.state, job.started_at, job.heartbeat_at = JobState.RUNNING, now, now
        audit_record(actor=MIGRATE_ACTOR, action="start", instance=job, before=before, after=snapshot(job))
        _vm_set(job.vm_id, {"status": VMStatus.MIGRATING}, actor=MIGRATE_ACTOR)
    return Claim.STARTED


def migration_finish(
    *,
    job_id: str,
    state: str,
    error: dict[str, Any] | None,
    stats: dict[str, Any],
    actor: Actor = MIGRATE_ACTOR,
    vm_state: str | None = None,
) -> bool:
    """running/queued -> a terminal state, once. The VM follows the outcome: a job's outcome is
    what moves a VM to another host. `vm_state`: the VM's state as libvirt reported it where it
    runs now (up or paused); None: up, until its host's next inventory says otherwise."""
    with transaction.atomic():
        job = MigrationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in ACTIVE_STATES:
            return False
        before = snapshot(job)
        values: dict[str, Any] = {"state": state, "error": error, "finished_at": timezone.now()}
        if stats:
            values["stats"] = stats
        if state == JobState.SUCCEEDED:
            values["progress"] = 100
        MigrationJob.objects.filter(pk=job_id, state__in=ACTIVE_STATES).update(**values)
        job.refresh_from_db()
        audit_record(actor=actor, action=state, instance=job, before=before, after=snapshot(job))
        changes: dict[str, Any] = {"status": vm_state if vm_state in (VMStatus.UP, VMStatus.PAUSED) else VMStatus.UP}
        if state == JobState.SUCCEEDED and job.destination_host_id:
            changes["host_id"] = job.destination_host_id
        _vm_set(job.vm_id, changes, actor=actor)
        # A failure to a host Ferry chose is tried once more on the next one (before the evacuation
        # is checked: the rerun is then the VM's attempt, not the failed job).
        rerun = migration_rerun(actor=actor, job=job)
        hosts = {pk for pk in (job.source_host_id, job.destination_host_id) if pk}
        if rerun is not None and rerun.destination_host_id:
            hosts.add(rerun.destination_host_id)
        # A host being emptied may now be empty (maintenance), or keep a VM it could not move.
        for host_id in sorted(hosts, key=str):
            evacuation_check(actor=actor, host_id=host_id)
        # A slot is free on both hosts: their waiting jobs are sent now, not at the next round.
        transaction.on_commit(lambda: dispatch_ready(host_ids=hosts))
    return True


def silent_jobs(*, now=None) -> list[tuple[MigrationJob, bool]]:
    """Running jobs whose agent has not reported for FERRY_HEARTBEAT_TIMEOUT_S and was not asked
    about them within that time, with whether it has been silent for FERRY_AGENT_LOST_S (lost).
    Queued jobs are never here: time in the queue is not a sign of anything."""
    now = now or timezone.now()
    quiet = now - timedelta(seconds=settings.FERRY_HEARTBEAT_TIMEOUT_S)
    lost = now - timedelta(seconds=settings.FERRY_AGENT_LOST_S)
    jobs = (
        MigrationJob.objects.filter(state=JobState.RUNNING)
        .filter(Q(heartbeat_at__lt=quiet) | Q(heartbeat_at__isnull=True, started_at__lt=quiet))
        .filter(Q(reconcile_sent_at__isnull=True) | Q(reconcile_sent_at__lt=quiet))
        .select_related("vm", "source_host", "destination_host")
    )
    return [(job, (job.heartbeat_at or job.started_at or now) < lost) for job in jobs]


def job_expire(*, job_id: str) -> bool:
    """The last resort when even the host's agent does not answer: fail the job without libvirt."""
    return migration_finish(
        job_id=job_id,
        state=JobState.FAILED,
        error={
            "code": "agent_lost",
            "message": "The source host's agent did not answer; the VM's real state is unknown until "
            "its host reports again.",
        },
        stats={},
        actor=RECONCILE_ACTOR,
    )


def _vm_set(vm_id, changes: dict[str, Any], *, actor: Actor) -> None:
    """What libvirt says about a VM is a fact, not an edit to validate: store it, versioned and audited."""
    # savepoint=False: inside a claim or a finish it joins their transaction (nothing here is
    # caught and retried); on its own it is its own transaction.
    with transaction.atomic(savepoint=False):
        vm = VM.objects.select_for_update().get(pk=vm_id)
        before = snapshot(vm)
        VM.objects.filter(pk=vm_id).update(**changes, version=F("version") + 1)
        # What the row now holds, without reading it again: the lock above kept everyone else out.
        for name, value in changes.items():
            setattr(vm, name, value)
        vm.version += 1
        audit_record(actor=actor, action="update", instance=vm, before=before, after=snapshot(vm))


def _final_stats(result: dict[str, Any]) -> dict[str, Any]:
    stats = dict(result.get("stats") or {})
    if "downtime" in stats and "downtime_ms" not in stats:
        stats["downtime_ms"] = stats["downtime"]
    stats["seconds"] = result.get("seconds")
    stats["actions"] = result.get("actions", [])
    return stats


# ------------------------------------------------------------------------------ payload checks
def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AgentBadRequest(f"{what} must be an object")
    return value


def _whole(value: Any, what: str, *, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise AgentBadRequest(f"{what} must be a whole number from 0 to {high}")
    return value


def _reported_state(payload: dict[str, Any], key: str) -> str | None:
    if key not in payload:
        raise AgentBadRequest(f"{key} is missing (null when the domain is defined nowhere there)")
    state = payload[key]
    if state is not None and state not in REPORTED_STATES:
        raise AgentBadRequest(f"{key} must be null or one of {', '.join(sorted(REPORTED_STATES))}")
    return state


def _stats(stats: Any) -> dict[str, Any]:
    if not isinstance(stats, dict):
        raise AgentBadRequest("stats must be an object")
    if len(json.dumps(stats)) > MAX_STATS_BYTES:
        raise AgentBadRequest(f"stats are larger than {MAX_STATS_BYTES} bytes")
    return stats


def _checked_result(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag in RESULT_FLAGS:
        if not isinstance(result.get(flag, False), bool):
            raise AgentBadRequest(f"result.{flag} must be true or false")
        out[flag] = bool(result.get(flag, False))
    code, message, seconds = result.get("error_code"), result.get("error_message"), result.get("seconds")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise AgentBadRequest("result.error_code must be a whole number or null")
    if message is not None and not isinstance(message, str):
        raise AgentBadRequest("result.error_message must be a string or null")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        raise AgentBadRequest("result.seconds must be a number or null")
    actions = result.get("actions", [])
    if not isinstance(actions, list):
        raise AgentBadRequest("result.actions must be a list")
    out |= {
        "error_code": code,
        "error_message": None if message is None else message[:MAX_MESSAGE],
        "seconds": seconds,
        "stats": _stats(result.get("stats", {})),
        "actions": actions,
    }
    if len(json.dumps(actions)) > MAX_STATS_BYTES:
        raise AgentBadRequest(f"result.actions are larger than {MAX_STATS_BYTES} bytes")
    return out
