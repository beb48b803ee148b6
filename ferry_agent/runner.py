"""What each host task does on the hypervisor, with a client of Ferry's agent API.

The agent only reports what libvirt said; Ferry decides (whether a claim may start, a job's
outcome from the domain's states, which VM rows an inventory changes). Every URI, flag and
parameter Ferry sends is checked against this machine's allow-list before libvirt sees it
(ferry_agent.checks). No Django here: the client is the only way to Ferry's state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ferry_agent import memlock, virt
from ferry_agent.checks import Refused, UriPolicy, check_order, domain_uuid
from ferry_agent.client import Client, ClientError

log = logging.getLogger(__name__)

__all__ = ["Agent", "ProgressReporter", "migrate", "reconcile", "refresh_capabilities", "sync_inventory"]

LIBVIRT_TIMEOUT_S = 30.0
PROGRESS_INTERVAL_S = 0.5
ACTIVE_DOMAIN_STATES = ("up", "paused", "migrating")
CLAIM_STARTED, CLAIM_BUSY = "started", "busy"
RESULT_KEYS = (
    "ok",
    "error_code",
    "error_message",
    "cancelled",
    "timed_out",
    "stalled",
    "refused",
    "aborted_by_schedule",
    "postcopy_started",
    "seconds",
)


@dataclass(frozen=True)
class Agent:
    """One host's agent: who it is, how it reaches Ferry, what it lets reach libvirt."""

    host_id: str
    client: Client
    uris: UriPolicy = field(default_factory=UriPolicy)
    #: No total limit by default (Vdsm has none): a migration ends by its schedule, cancel or the
    #: stall watchdog. A number is a hard limit on one libvirt migration call.
    migration_timeout_s: float | None = None
    #: The schedule's pulse (Vdsm's migration_monitor_interval) and the stall watchdog.
    migration_pulse_s: float = virt.DEFAULT_PULSE_S
    migration_stall_s: float | None = 600.0
    #: This host's own cap on one migration, MiB/s (Vdsm's migration_max_bandwidth), reported with
    #: the capabilities: it applies when the cluster gives no bandwidth figure.
    max_bandwidth_mib_s: int = 52


# ------------------------------------------------------------------------------ host reports
def _own_host(agent: Agent) -> dict:
    """What Ferry holds for this host now (an admin may have changed its URI or address)."""
    info = agent.client.host_info()
    if str(info.get("id")) != agent.host_id:
        raise Refused(f"Ferry answered for host {info.get('id')}, not {agent.host_id}")
    return info


def _own_libvirt_uri(agent: Agent) -> object:
    """The libvirt URI Ferry holds for this host now (an admin may have changed it), as Ferry sent
    it: the caller checks it (UriPolicy.libvirt)."""
    return _own_host(agent).get("libvirt_uri")


def refresh_capabilities(agent: Agent) -> dict:
    """Read libvirt's capabilities and report them, or report why they could not be read. The
    link speed is that of the NIC carrying the host's migration address (Ferry's `address`)."""
    info = _own_host(agent)
    uri, address = info.get("libvirt_uri"), info.get("address")
    try:
        capabilities = virt.host_capabilities(
            agent.uris.libvirt(uri), timeout=LIBVIRT_TIMEOUT_S, migration_address=address if address else None
        )
    except Refused as error:
        log.warning("host %s: %s", agent.host_id, error)
        return agent.client.report_capabilities({"error": {"check": "libvirt_uri", "message": str(error)}})
    except virt.VirtError as error:
        log.warning("host %s: libvirt unreachable at %s: %s", agent.host_id, uri, error)
        return agent.client.report_capabilities({"error": {"check": "libvirt_connection", "message": str(error)}})
    capabilities["migration_max_bandwidth_mib_s"] = agent.max_bandwidth_mib_s
    # The limits this agent holds each migration to, so that every plan can say which apply.
    capabilities["migration_pulse_s"] = agent.migration_pulse_s
    capabilities["migration_stall_s"] = agent.migration_stall_s or None
    capabilities["migration_timeout_s"] = agent.migration_timeout_s or None
    capabilities["memlock_enforced"] = _memlock_enforced(agent.uris.libvirt(uri))
    return agent.client.report_capabilities({"capabilities": capabilities})


def _memlock_enforced(uri: str) -> bool | None:
    """Whether this host's running QEMU processes are held to their locked-memory limit
    (ferry_agent.memlock), or None when that cannot be seen from here: a libvirt on another
    machine (a URI naming a host), or no running domain to look at."""
    if urlsplit(uri).hostname:
        return None
    try:
        running = virt.active_domain_uuids(uri, timeout=LIBVIRT_TIMEOUT_S)
    except virt.VirtError as error:
        log.info("memlock: cannot list the running domains at %s: %s", uri, error)
        return None
    return memlock.qemu_memlock_enforced(running)


def sync_inventory(agent: Agent) -> dict:
    """List libvirt's domains and report them; Ferry decides what they change."""
    try:
        uri = agent.uris.libvirt(_own_libvirt_uri(agent))
        domains = virt.list_domains(uri, timeout=LIBVIRT_TIMEOUT_S)
    except (Refused, virt.VirtError) as error:
        # Nothing is reported: an inventory that could not be read changes no VM (the
        # capabilities report says why the host is unreachable).
        log.warning("host %s: inventory not read: %s", agent.host_id, error)
        return {"error": str(error)}
    return agent.client.report_inventory({"domains": domains})


# ------------------------------------------------------------------------------ migrations
class ProgressReporter:
    """Progress reports for one running job, at most one per interval; each answer says whether
    Ferry wants the job stopped. Before the migration job shows any statistics, asking whether
    to cancel sends the last progress again, so a cancel is seen from the start. A report that
    cannot be delivered is logged; the next one tries again."""

    def __init__(self, client: Client, job_id: str, *, interval: float = PROGRESS_INTERVAL_S):
        self.client = client
        self.job_id = job_id
        self.interval = interval
        self.last_sent = float("-inf")
        self.progress = 0
        self.stats: dict[str, Any] = {}
        self.cancel = False

    def on_progress(self, report: dict[str, Any]) -> None:
        self.progress = max(self.progress, min(99, int(report.get("progress") or 0)))
        self.stats = {key: value for key, value in report.items() if key != "progress"}
        self._send()

    def should_cancel(self) -> bool:
        self._send()
        return self.cancel

    def _send(self) -> None:
        now = time.monotonic()
        if now - self.last_sent < self.interval:
            return
        self.last_sent = now
        try:
            answer = self.client.job_progress(self.job_id, {"progress": self.progress, "stats": self.stats})
        except ClientError as error:
            log.warning("job %s: progress not delivered: %s", self.job_id, error)
            return
        self.cancel = self.cancel or bool(answer.get("cancel_requested"))


def _report_own_uri_refused(agent: Agent, uri: Any) -> None:
    """When this host's own libvirt URI is what was refused, the host is unreachable: say why."""
    try:
        agent.uris.libvirt(uri)
    except Refused as error:
        try:
            agent.client.report_capabilities({"error": {"check": "libvirt_uri", "message": str(error)}})
        except ClientError as report_error:
            log.warning("host %s: could not report its refused URI: %s", agent.host_id, report_error)


def _domain_state(agent: Agent, uri: str | None, uuid: str) -> str | None:
    """The domain's state at uri as the job's outcome needs it: None (not defined there) or
    "unreachable" when the host could not be read, or its URI is not allowed here."""
    if uri is None:
        return None
    try:
        return virt.domain_state(agent.uris.libvirt(uri), uuid, timeout=LIBVIRT_TIMEOUT_S)
    except (Refused, virt.VirtError) as error:
        log.warning("cannot read domain %s at %s: %s", uuid, uri, error)
        return "unreachable"


def _result(result: dict[str, Any]) -> dict[str, Any]:
    """virt.migrate's result as the finish report carries it."""
    out = {key: result.get(key) for key in RESULT_KEYS}
    for flag in ("ok", "cancelled", "timed_out", "stalled", "refused", "aborted_by_schedule", "postcopy_started"):
        out[flag] = bool(out[flag])
    out["stats"] = dict(result.get("stats") or {})
    out["actions"] = list(result.get("actions") or [])
    return out


def _failed(message: str, code: int | None = None) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "error_message": message}


def migrate(agent: Agent, job_id: str) -> str:
    """Claim the job; run it on libvirt with exactly its frozen plan, every URI and flag checked
    here first; report progress and honour cancel; read the domain on both hosts; report the end.
    Returns the claim's answer ("started", "busy" or "not_queued")."""
    began = time.monotonic()
    answer = agent.client.job_claim(job_id)
    claimed = calling = time.monotonic()
    if answer.get("claim") != CLAIM_STARTED:
        return str(answer.get("claim"))
    job = answer.get("job") or {}
    vm_uuid = str(job.get("vm_uuid"))
    source_uri, monitor_uri = job.get("source_uri"), job.get("destination_monitor_uri")
    try:
        order = check_order(job, agent.uris)
    except Refused as error:
        log.error("job %s: refused by this agent: %s", job_id, error)
        result = _failed(f"Refused by the source host's agent: {error}") | {"refused": True}
        _report_own_uri_refused(agent, source_uri)
    else:
        vm_uuid, source_uri, monitor_uri = order.vm_uuid, order.source_uri, order.destination_monitor_uri
        reporter = ProgressReporter(agent.client, job_id)
        calling = time.monotonic()
        try:
            result = virt.migrate(
                source_uri=order.source_uri,
                domain_uuid=order.vm_uuid,
                destination_uri=order.destination_uri,
                flags=order.flags,
                params=order.params,
                schedule=order.schedule,
                timeout=agent.migration_timeout_s,
                pulse_s=agent.migration_pulse_s,
                stall_s=agent.migration_stall_s,
                on_progress=reporter.on_progress,
                should_cancel=reporter.should_cancel,
            )
        except virt.VirtError as error:
            result = _failed(str(error), error.code)
        except Exception as error:  # a bug must still end the job, never leave it running
            log.exception("migration %s crashed", job_id)
            result = _failed(f"Internal error in the agent: {error}")
    migrated = time.monotonic()
    report = {
        "result": _result(result),
        "source_state": _domain_state(agent, source_uri, vm_uuid),
        "destination_state": _domain_state(agent, monitor_uri, vm_uuid),
    }
    checked = time.monotonic()
    ended = agent.client.job_finish(job_id, report)
    finished = time.monotonic()
    call_s = float(result.get("seconds") or 0.0)
    # Ferry's own time around the libvirt call, phase by phase (bench/lab_long.py's ferry_own_ms).
    log.info(
        "migration %s timing: claim %.0f ms, around the libvirt call %.0f ms, domain states %.0f ms, "
        "finish %.0f ms, libvirt call %.3f s",
        job_id,
        (claimed - began) * 1000,
        max(0.0, migrated - calling - call_s) * 1000,
        (checked - migrated) * 1000,
        (finished - checked) * 1000,
        call_s,
    )
    log.info(
        "migration %s of %s: %s (source %s, destination %s)",
        job_id,
        vm_uuid,
        ended.get("state"),
        report["source_state"],
        report["destination_state"],
    )
    return CLAIM_STARTED


def reconcile(agent: Agent, job_id: str) -> str:
    """A running job whose agent stopped reporting (it was restarted, or lost its way to Ferry):
    if libvirt still migrates the domain, follow that migration again to its end (progress,
    cancel); then report the domain's state on both hosts, and Ferry decides the outcome."""
    job = agent.client.job_get(job_id)
    if job.get("state") not in ("queued", "running"):
        return str(job.get("state"))
    uuid = domain_uuid(job.get("vm_uuid"))
    source_uri = job.get("source_uri")
    aborted, reason = False, None
    if job.get("state") == "running":
        try:
            running = virt.job_running(agent.uris.libvirt(source_uri), uuid, timeout=LIBVIRT_TIMEOUT_S)
        except (Refused, virt.VirtError) as error:
            log.info("reconcile %s: cannot read libvirt's job: %s", job_id, error)
            running = False
        if running:
            log.info("reconcile %s: libvirt still migrates %s: following it again", job_id, uuid)
            reporter = ProgressReporter(agent.client, job_id)
            reporter.cancel = bool(job.get("cancel_requested"))
            try:
                followed = virt.follow_job(
                    agent.uris.libvirt(source_uri),
                    uuid,
                    on_progress=reporter.on_progress,
                    should_cancel=reporter.should_cancel,
                    schedule=job.get("convergence_schedule") or {},
                    steps_done=int(job.get("steps_done") or 0),
                    pulse_s=agent.migration_pulse_s,
                    stall_s=agent.migration_stall_s,
                )
                for flag, why in (("cancelled", "cancel"), ("aborted_by_schedule", "schedule"), ("stalled", "stalled")):
                    if followed[flag]:
                        aborted, reason = True, why
                        break
            except (Refused, virt.VirtError) as error:
                log.warning("reconcile %s: cannot follow libvirt's job: %s", job_id, error)
    source_state = _domain_state(agent, source_uri, uuid)
    destination_state = _domain_state(agent, job.get("destination_monitor_uri"), uuid)
    payload = {"source_state": source_state, "destination_state": destination_state, "aborted": aborted}
    if reason is not None:
        payload["reason"] = reason
    return str(agent.client.job_reconcile(job_id, payload).get("state"))
