"""The host agent's services: what the Celery tasks on a hypervisor do.

They speak to libvirt only through ferry_agent.virt, in plain values, and every URI is checked
against Ferry's allow-list (core.uris, ferry_agent.checks) right before libvirt opens it, so a
row written any other way than through the model's validation still cannot start a program. They
speak to the database through conditional UPDATEs, so a duplicate delivery, a cancel or a
reconciler racing a running job cannot move a job backwards or end it twice. Every change is
audited with the task as the actor.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clusters.models import VM, Host, VMStatus, libvirt_uri_options
from clusters.services import host_mark_unreachable, host_report_capabilities, vm_create
from core.audit import Actor, audit_record, snapshot
from ferry_agent import virt
from ferry_agent.checks import Order, Refused, UriPolicy, check_order
from migrations_app.models import ACTIVE_STATES, JobState, MigrationJob
from migrations_app.progress import record_progress

logger = logging.getLogger(__name__)

MIGRATE_ACTOR = Actor.task("ferry.migrate")
REFRESH_ACTOR = Actor.task("ferry.refresh_capabilities")
SYNC_ACTOR = Actor.task("ferry.sync_inventory")
RECONCILE_ACTOR = Actor.task("ferry.reconcile")
LIBVIRT_TIMEOUT_S = 30.0
PROGRESS_WRITE_INTERVAL_S = 0.5
ACTIVE_DOMAIN_STATES = ("up", "paused", "migrating")


class Claim(Enum):
    STARTED = "started"
    BUSY = "busy"  # the host's migration limit is reached: try again later
    NOT_QUEUED = "not_queued"  # a duplicate delivery, or cancelled before it started


def uri_policy() -> UriPolicy:
    """Ferry's own allow-list (the settings the model's validation reads), checked again here."""
    return UriPolicy(**libvirt_uri_options())


def capabilities_refresh(*, host_id: str) -> Host:
    host = Host.objects.get(pk=host_id)
    try:
        uri = uri_policy().libvirt(host.libvirt_uri)
    except Refused as error:
        logger.error("host %s: %s", host.name, error)
        return host_mark_unreachable(actor=REFRESH_ACTOR, host=host, check="libvirt_uri", message=str(error))
    try:
        capabilities = virt.host_capabilities(uri, timeout=LIBVIRT_TIMEOUT_S)
    except virt.VirtError as error:
        logger.warning("host %s: libvirt unreachable at %s: %s", host.name, uri, error)
        return host_mark_unreachable(
            actor=REFRESH_ACTOR, host=host, check="libvirt_connection", message=f"{uri}: {error}"
        )
    capabilities["migration_max_bandwidth_mib_s"] = settings.FERRY_HOST_MAX_BANDWIDTH_MIB_S
    try:
        return host_report_capabilities(actor=REFRESH_ACTOR, host=host, capabilities=capabilities)
    except ValidationError as error:
        message = "; ".join(error.messages)
        logger.error("host %s: capabilities report refused: %s", host.name, message)
        return host_mark_unreachable(actor=REFRESH_ACTOR, host=host, check="capabilities_report", message=message)


def inventory_sync(*, host_id: str) -> dict[str, int]:
    """The host's libvirt domains become VMs: new ones are added, moved ones follow their host,
    vanished ones are marked unknown. VMs in a migration are left to their job."""
    host = Host.objects.get(pk=host_id)
    counts = {"added": 0, "updated": 0, "moved": 0, "vanished": 0}
    try:
        uri = uri_policy().libvirt(host.libvirt_uri)
    except Refused as error:
        logger.error("host %s: inventory not synced: %s", host.name, error)
        return counts
    domains = virt.list_domains(uri, timeout=LIBVIRT_TIMEOUT_S)
    seen = set()
    busy = set(MigrationJob.objects.filter(state__in=ACTIVE_STATES).values_list("vm_id", flat=True))
    known = {str(vm.uuid): vm for vm in VM.objects.filter(uuid__in=[d["uuid"] for d in domains])}
    for domain in domains:
        seen.add(domain["uuid"])
        values = {
            "name": domain["name"][:100],
            "memory_mib": max(1, domain["memory_mib"]),
            "vcpus": max(1, domain["vcpus"]),
            "status": domain["state"],
        }
        vm = known.get(domain["uuid"])
        if vm is None:
            vm_create(actor=SYNC_ACTOR, data=values | {"uuid": domain["uuid"], "host": host})
            counts["added"] += 1
            continue
        if vm.pk in busy:
            continue
        if vm.host_id != host.pk:
            if domain["state"] not in ACTIVE_DOMAIN_STATES:
                continue  # a stale definition left behind; the running copy decides where the VM is
            values["host_id"] = host.pk
            counts["moved"] += 1
        changes = {k: v for k, v in values.items() if getattr(vm, k) != v}
        if changes:
            _vm_set(vm.pk, changes, actor=SYNC_ACTOR)
            counts["updated"] += 1
    for vm in VM.objects.filter(host=host).exclude(pk__in=busy):
        if str(vm.uuid) not in seen and vm.status != VMStatus.UNKNOWN:
            _vm_set(vm.pk, {"status": VMStatus.UNKNOWN}, actor=SYNC_ACTOR)
            counts["vanished"] += 1
    return counts


def migration_claim(*, job_id: str) -> Claim:
    """queued -> running, at most once, within the plan's per-host limits."""
    with transaction.atomic():
        job = MigrationJob.objects.filter(pk=job_id).first()
        if job is None or job.state != JobState.QUEUED:
            return Claim.NOT_QUEUED
        # Lock both hosts (in a fixed order) so concurrent claims count running jobs one at a time.
        host_ids = [job.source_host_id, job.destination_host_id]
        list(Host.objects.select_for_update().filter(pk__in=host_ids).order_by("pk"))
        running = MigrationJob.objects.filter(state=JobState.RUNNING)
        if running.filter(source_host_id=job.source_host_id).count() >= job.plan["outgoing_limit"]:
            return Claim.BUSY
        if running.filter(destination_host_id=job.destination_host_id).count() >= job.plan["incoming_limit"]:
            return Claim.BUSY
        before = snapshot(job)
        now = timezone.now()
        started = MigrationJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.RUNNING, started_at=now, heartbeat_at=now
        )
        if not started:
            return Claim.NOT_QUEUED
        job.refresh_from_db()
        audit_record(actor=MIGRATE_ACTOR, action="start", instance=job, before=before, after=snapshot(job))
        _vm_set(job.vm_id, {"status": VMStatus.MIGRATING}, actor=MIGRATE_ACTOR)
    return Claim.STARTED


class _JobReporter:
    """Progress and cancel checks for one running job, with throttled database writes."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.last_write = 0.0
        self.last_check = 0.0
        self.cancel = False

    def progress(self, report: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_WRITE_INTERVAL_S:
            return
        self.last_write = now
        stats = {key: value for key, value in report.items() if key != "progress"}
        record_progress(self.job_id, int(report.get("progress") or 0), stats)

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.cancel and now - self.last_check >= PROGRESS_WRITE_INTERVAL_S:
            self.last_check = now
            self.cancel = MigrationJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self.cancel


def monitor_uri(host: Host) -> str:
    """A URI that names this host's daemon from elsewhere: a bare local URI (qemu:///system) would
    name the caller's own daemon, so the peer URI is used instead."""
    uri = host.libvirt_uri
    if "://" in uri and (uri.split("://", 1)[1].split("/", 1)[0] or "socket=" in uri):
        return uri
    return host.destination_uri


def _domain_state(uri: str, uuid: str) -> str | None:
    try:
        return virt.domain_state(uri_policy().libvirt(uri), uuid, timeout=LIBVIRT_TIMEOUT_S)
    except (Refused, virt.VirtError) as error:
        logger.warning("cannot read domain %s at %s: %s", uuid, uri, error)
        return "unreachable"


def decide_outcome(
    *, source_state: str | None, destination_state: str | None, result: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """The job's end from the domain's real state (still active on the source: not moved)."""
    libvirt_error = {
        "code": "migration_failed",
        "message": result.get("error_message") or "The migration did not complete.",
        "libvirt_code": result.get("error_code"),
    }
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


def migration_finish(
    *, job_id: str, state: str, error: dict[str, Any] | None, stats: dict[str, Any], actor: Actor = MIGRATE_ACTOR
) -> bool:
    """running/queued -> a terminal state, once. The VM follows the outcome."""
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
        changes: dict[str, Any] = {"status": VMStatus.UP}
        if state == JobState.SUCCEEDED and job.destination_host_id:
            changes["host_id"] = job.destination_host_id
        _vm_set(job.vm_id, changes, actor=actor)
    return True


def _vm_set(vm_id, changes: dict[str, Any], *, actor: Actor) -> None:
    """What libvirt says about a VM is a fact, not an edit to validate: store it, versioned and audited."""
    with transaction.atomic():
        vm = VM.objects.select_for_update().get(pk=vm_id)
        before = snapshot(vm)
        VM.objects.filter(pk=vm_id).update(**changes, version=F("version") + 1)
        vm.refresh_from_db()
        audit_record(actor=actor, action="update", instance=vm, before=before, after=snapshot(vm))


def _final_stats(result: dict[str, Any]) -> dict[str, Any]:
    stats = dict(result.get("stats") or {})
    if "downtime" in stats and "downtime_ms" not in stats:
        stats["downtime_ms"] = stats["downtime"]
    stats["seconds"] = result.get("seconds")
    stats["actions"] = result.get("actions", [])
    return stats


def _allowed_or_none(uri: str) -> str | None:
    try:
        return uri_policy().libvirt(uri)
    except Refused:
        return None


def _checked_order(job: MigrationJob) -> Order:
    """The job's frozen plan and its hosts' URIs, every value checked as the host agent checks it
    (ferry_agent.checks): the destination_uri and the migrate_uri included."""
    return check_order(
        {
            "id": str(job.pk),
            "vm_uuid": str(job.vm.uuid),
            "source_uri": job.source_host.libvirt_uri,
            "destination_monitor_uri": monitor_uri(job.destination_host),
            "plan": job.plan,
        },
        uri_policy(),
    )


def migration_run(*, job_id: str) -> Claim:
    """Run one claimed job on libvirt with exactly its frozen plan, and end it truthfully."""
    claim = migration_claim(job_id=job_id)
    if claim is not Claim.STARTED:
        return claim
    job = MigrationJob.objects.select_related("vm", "source_host", "destination_host").get(pk=job_id)
    source, destination, uuid = job.source_host, job.destination_host, str(job.vm.uuid)
    try:
        order = _checked_order(job)
    except Refused as error:
        # Nothing reaches libvirt: the job ends failed and the VM stays where it is.
        logger.error("migration %s refused before libvirt: %s", job_id, error)
        if _allowed_or_none(source.libvirt_uri) is None:
            host_mark_unreachable(actor=MIGRATE_ACTOR, host=source, check="libvirt_uri", message=str(error))
        migration_finish(
            job_id=job_id,
            state=JobState.FAILED,
            error={"code": "uri_refused", "message": f"Refused before libvirt: {error}"},
            stats={},
        )
        return claim
    reporter = _JobReporter(job_id)
    try:
        result = virt.migrate(
            source_uri=order.source_uri,
            domain_uuid=order.vm_uuid,
            destination_uri=order.destination_uri,
            flags=order.flags,
            params=order.params,
            schedule=order.schedule,
            timeout=settings.FERRY_MIGRATION_TIMEOUT_S or None,
            pulse_s=settings.FERRY_MIGRATION_PULSE_S,
            stall_s=settings.FERRY_MIGRATION_STALL_S or None,
            on_progress=reporter.progress,
            should_cancel=reporter.should_cancel,
        )
    except virt.VirtError as error:
        result = {"ok": False, "error_code": error.code, "error_message": str(error)}
    except Exception as error:  # a bug must still end the job, never leave it running
        logger.exception("migration %s crashed", job_id)
        result = {"ok": False, "error_code": None, "error_message": f"Internal error: {error}"}
    source_state = _domain_state(source.libvirt_uri, uuid)
    destination_state = _domain_state(monitor_uri(destination), uuid)
    state, error = decide_outcome(source_state=source_state, destination_state=destination_state, result=result)
    logger.info(
        "migration %s of %s: %s (source %s, destination %s)",
        job_id,
        job.vm.name,
        state,
        source_state,
        destination_state,
    )
    migration_finish(job_id=job_id, state=state, error=error, stats=_final_stats(result))
    return claim


def stale_jobs(*, now=None):
    """Jobs still queued or running past the reconcile timeout."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.FERRY_RECONCILE_AFTER_S)
    return MigrationJob.objects.filter(state__in=ACTIVE_STATES, created_at__lt=limit).select_related(
        "vm", "source_host", "destination_host"
    )


def job_reconcile(*, job_id: str) -> str | None:
    """End a job whose task is gone, from libvirt's real state. Runs on the source host's queue."""
    job = MigrationJob.objects.select_related("vm", "source_host", "destination_host").get(pk=job_id)
    if job.state not in ACTIVE_STATES:
        return None
    uuid = str(job.vm.uuid)
    source_state = _domain_state(job.source_host.libvirt_uri, uuid) if job.source_host else "unreachable"
    destination_state = _domain_state(monitor_uri(job.destination_host), uuid) if job.destination_host else None
    if source_state in ACTIVE_DOMAIN_STATES and job.state == JobState.RUNNING:
        # A live libvirt job may still be running on the source: stop it before ending ours.
        try:
            virt.abort_job(uri_policy().libvirt(job.source_host.libvirt_uri), uuid, timeout=LIBVIRT_TIMEOUT_S)
        except (Refused, virt.VirtError) as error:
            logger.info("reconcile %s: no libvirt job to abort: %s", job_id, error)
    message = "The migration task did not finish in time; ended by the reconciler."
    state, error = decide_outcome(
        source_state=source_state,
        destination_state=destination_state,
        result={"ok": False, "error_code": None, "error_message": message},
    )
    if error is not None and error["code"] == "migration_failed":
        error = error | {"code": "reconciled"}
    migration_finish(job_id=job_id, state=state, error=error, stats={}, actor=RECONCILE_ACTOR)
    return state


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
