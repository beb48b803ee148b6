"""The thin libvirt layer of Ferry: the only module that imports libvirt.

Plain values go in and come out (str, int, bool, dict, list), so the rest of Ferry never sees a
libvirt object and this module can be tested against real libvirt daemons (see lab/lab.sh and
tests/virt/).  It has no Django imports.

`import libvirt` is lazy: importing this module works on a machine without libvirt-python; the
functions then raise VirtError saying so.

Every libvirt call that can block runs in a daemon thread with a hard timeout: a peer that
accepts TCP but never answers makes libvirt block for minutes, and virDomainAbortJob does not
unblock the connect phase of a migration.  A call that times out is abandoned (its thread stays
stuck inside libvirt until libvirt gives up) and reported as VirtError / timed_out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "SCHEDULE_ACTIONS",
    "VirtError",
    "abort_job",
    "domain_state",
    "host_capabilities",
    "list_domains",
    "migrate",
]

#: Convergence schedule actions migrate() understands (oVirt's names).
SCHEDULE_ACTIONS = ("setDowntime", "postcopy", "abort")

_ZEROCOPY_MIN_LIBVIRT = 8_005_000  # virDomainMigrate flag VIR_MIGRATE_ZEROCOPY: libvirt 8.5.0
_ZEROCOPY_MIN_QEMU = 7_001_000  # multifd zero-copy-send: QEMU 7.1.0
_PARALLEL_MIN_LIBVIRT = 5_002_000  # VIR_MIGRATE_PARALLEL: libvirt 5.2.0


class VirtError(Exception):
    """A libvirt operation failed, timed out or could not be attempted.

    ``code`` is libvirt's error code (virErrorNumber) when libvirt reported one, else None;
    ``message`` is a human-readable explanation.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message if self.code is None else f"{self.message} (libvirt error {self.code})"


# ------------------------------------------------------------------------------ libvirt loading
_lock = threading.Lock()
_libvirt: Any = None
_events_pid: int | None = None  # process that runs the libvirt event loop thread


def _lv() -> Any:
    """The libvirt module, imported on first use, with its stderr error printing silenced."""
    global _libvirt
    if _libvirt is None:
        with _lock:
            if _libvirt is None:
                try:
                    import libvirt
                except ImportError as exc:
                    raise VirtError(
                        "libvirt-python is not installed (pip install -r requirements-agent.txt; "
                        f"it builds against libvirt-dev): {exc}"
                    ) from None
                # libvirt prints every error to stderr by default; we report errors ourselves.
                libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
                _libvirt = libvirt
    return _libvirt


def _events() -> bool:
    """Start libvirt's default event loop in a daemon thread (once per process).

    Needed only to receive VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, which carries the final statistics
    of a migration whose source domain is undefined right after it (UNDEFINE_SOURCE).
    Connections opened before this call do not deliver events.  Returns False if unavailable.
    """
    global _events_pid
    lv = _lv()
    with _lock:
        if _events_pid == os.getpid():
            return True
        try:
            if _events_pid is None:
                lv.virEventRegisterDefaultImpl()
        except Exception as exc:  # optional feature
            log.debug("libvirt event loop unavailable: %s", exc)
            return False

        def loop() -> None:
            while True:
                try:
                    lv.virEventRunDefaultImpl()
                except Exception:  # keep the loop alive
                    time.sleep(0.1)

        threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
        _events_pid = os.getpid()
        return True


def _err(exc: BaseException, what: str) -> VirtError:
    lv = _libvirt
    if lv is not None and isinstance(exc, lv.libvirtError):
        msg = exc.get_error_message() or str(exc)
        return VirtError(f"{what}: {msg}", exc.get_error_code())
    if isinstance(exc, VirtError):
        return exc
    return VirtError(f"{what}: {type(exc).__name__}: {exc}")


class _TimedOut(Exception):
    pass


def _run(fn: Callable[[], Any], timeout: float, name: str) -> Any:
    """Run fn() in a daemon thread; its result, its exception, or _TimedOut after timeout s."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    th = threading.Thread(target=target, name=f"virt-{name}", daemon=True)
    th.start()
    th.join(max(0.0, timeout))
    if th.is_alive():
        raise _TimedOut(name)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _guarded(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """_run() with every failure turned into VirtError."""
    try:
        return _run(fn, timeout, what)
    except _TimedOut:
        raise VirtError(f"{what}: no answer within {timeout:g} s") from None
    except VirtError:
        raise
    except Exception as exc:
        raise _err(exc, what) from None


def _with_conn(uri: str, timeout: float, what: str, fn: Callable[[Any], Any]) -> Any:
    """Open uri, run fn(conn), close it: all in one guarded thread."""
    lv = _lv()

    def work() -> Any:
        conn = lv.open(uri)
        try:
            return fn(conn)
        finally:
            with contextlib.suppress(lv.libvirtError):
                conn.close()

    return _guarded(work, timeout, f"{what} ({uri})")


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def _binding_version() -> str:
    try:
        from importlib.metadata import version

        return version("libvirt-python")
    except Exception:  # e.g. a distribution package without metadata
        return _version(_lv().getVersion())


# ------------------------------------------------------------------------------ host
def host_capabilities(uri: str, *, timeout: float = 30.0) -> dict:
    """What the libvirt host at uri can do.

    Returns exactly: libvirt_version (str, "9.0.0"), qemu_version (str, "7.2.0"), agent_version
    (str, the libvirt-python binding version), zerocopy_migrations (bool), parallel_migrations
    (bool), cpu_count (int), memory_mib (int), link_speed_mbps (int | None: the fastest "up" NIC
    that the host's node-device driver reports, None when unknown).
    Raises VirtError when the host cannot be reached within timeout seconds.
    """
    lv = _lv()

    def work(conn: Any) -> dict:
        libver = conn.getLibVersion()
        qemuver = conn.getVersion()
        info = conn.getInfo()  # [model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
        return {
            "libvirt_version": _version(libver),
            "qemu_version": _version(qemuver),
            "agent_version": _binding_version(),
            "zerocopy_migrations": hasattr(lv, "VIR_MIGRATE_ZEROCOPY")
            and hasattr(lv, "VIR_MIGRATE_PARALLEL")
            and libver >= _ZEROCOPY_MIN_LIBVIRT
            and qemuver >= _ZEROCOPY_MIN_QEMU,
            "parallel_migrations": hasattr(lv, "VIR_MIGRATE_PARALLEL") and libver >= _PARALLEL_MIN_LIBVIRT,
            "cpu_count": int(info[2]),
            "memory_mib": _memory_mib(conn, info),
            "link_speed_mbps": _link_speed(conn),
        }

    return _with_conn(uri, timeout, "host capabilities", work)


def _memory_mib(conn: Any, info: list) -> int:
    """The host's RAM: /proc/meminfo's total via getMemoryStats (getInfo's figure comes from the
    NUMA nodes, which can be smaller than the real RAM, e.g. on VMs with hot-plugged memory)."""
    try:
        total_kib = conn.getMemoryStats(_libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)["total"]
        return int(total_kib) // 1024
    except Exception:  # fall back to getInfo
        return int(info[1])


def _link_speed(conn: Any) -> int | None:
    lv = _libvirt
    try:
        devices = conn.listAllDevices(lv.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)
    except Exception:  # no node-device driver: unknown
        return None
    best = None
    for dev in devices:
        try:
            # the XML comes from the libvirt daemon itself, not from an untrusted party
            link = ET.fromstring(dev.XMLDesc(0)).find("./capability/link")  # noqa: S314
        except Exception as exc:
            log.debug("node device XML: %s", exc)
            continue
        if link is None or link.get("state") != "up" or not (link.get("speed") or "").isdigit():
            continue
        best = max(best or 0, int(link.get("speed")))
    return best


# ------------------------------------------------------------------------------ domains
def _state_name(state: int, reason: int) -> str:
    lv = _libvirt
    if state == lv.VIR_DOMAIN_RUNNING or state == lv.VIR_DOMAIN_BLOCKED:
        return "up"
    if state == lv.VIR_DOMAIN_PAUSED:
        migrating = (lv.VIR_DOMAIN_PAUSED_MIGRATION, getattr(lv, "VIR_DOMAIN_PAUSED_POSTCOPY", -1))
        return "migrating" if reason in migrating else "paused"
    if state in (lv.VIR_DOMAIN_SHUTOFF, lv.VIR_DOMAIN_CRASHED):
        return "down"
    return "unknown"


def list_domains(uri: str, *, timeout: float = 30.0) -> list[dict]:
    """All domains (active and defined) of the host at uri.

    Each: {uuid (str), name (str), memory_mib (int, maximum memory), vcpus (int), state}, state
    being "up" (running), "paused", "migrating" (paused by a migration), "down" (shut off or
    crashed) or "unknown".  Raises VirtError when the host cannot be reached.
    """
    lv = _lv()

    def work(conn: Any) -> list[dict]:
        out = []
        for dom in conn.listAllDomains(0):
            try:
                state, reason = dom.state()
                info = dom.info()  # [state, maxMem KiB, memory KiB, nrVirtCpu, cpuTime]
                out.append(
                    {
                        "uuid": dom.UUIDString(),
                        "name": dom.name(),
                        "memory_mib": int(info[1]) // 1024,
                        "vcpus": int(info[3]),
                        "state": _state_name(state, reason),
                    }
                )
            except lv.libvirtError as exc:
                if exc.get_error_code() != lv.VIR_ERR_NO_DOMAIN:
                    raise
                # it went away while we listed (e.g. migrated with UNDEFINE_SOURCE)
        return sorted(out, key=lambda d: (d["name"], d["uuid"]))

    return _with_conn(uri, timeout, "list domains", work)


def domain_state(uri: str, uuid: str, *, timeout: float = 30.0) -> str | None:
    """State of domain uuid on the host at uri (as in list_domains), or None if not defined there."""
    lv = _lv()

    def work(conn: Any) -> str | None:
        try:
            dom = conn.lookupByUUIDString(uuid)
            return _state_name(*dom.state())
        except lv.libvirtError as exc:
            if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                return None
            raise

    return _with_conn(uri, timeout, "domain state", work)


def abort_job(uri: str, uuid: str, *, timeout: float = 30.0) -> None:
    """Abort the job (e.g. an outgoing migration) running on domain uuid at uri.

    Raises VirtError when the host cannot be reached, the domain is not defined there
    (code VIR_ERR_NO_DOMAIN, 42) or no job is running (code VIR_ERR_OPERATION_INVALID, 55).
    """

    def work(conn: Any) -> None:
        conn.lookupByUUIDString(uuid).abortJob()

    _with_conn(uri, timeout, "abort job", work)


# ------------------------------------------------------------------------------ migration
def _flag_bits(flags: list[str]) -> int:
    lv = _lv()
    bits = 0
    for name in flags:
        value = getattr(lv, name, None) if isinstance(name, str) else None
        if (
            not isinstance(name, str)
            or not name.startswith("VIR_MIGRATE_")
            or name.startswith("VIR_MIGRATE_PARAM_")
            or not isinstance(value, int)
        ):
            raise VirtError(
                f"unknown migration flag {name!r} (libvirt-python {_binding_version()} has no such "
                "VIR_MIGRATE_* constant)"
            )
        bits |= value
    return bits


def _check_schedule(schedule: dict | None) -> tuple[list[dict], list[dict]]:
    schedule = schedule or {}
    if not isinstance(schedule, dict):
        raise VirtError(f"schedule must be a dict, not {type(schedule).__name__}")
    unknown = set(schedule) - {"init", "stalling"}
    if unknown:
        raise VirtError(f"schedule has unknown sections: {sorted(unknown)}")

    def action(a: Any, where: str) -> dict:
        if not isinstance(a, dict) or a.get("name") not in SCHEDULE_ACTIONS:
            raise VirtError(f"schedule {where}: unknown action {a!r} (known: {SCHEDULE_ACTIONS})")
        params = list(a.get("params") or [])
        if a["name"] == "setDowntime":
            try:
                if len(params) != 1 or int(params[0]) <= 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise VirtError(f"schedule {where}: setDowntime needs one positive ms value") from None
        return {"name": a["name"], "params": params}

    init = [action(a, "init") for a in schedule.get("init") or []]
    steps = []
    for i, step in enumerate(schedule.get("stalling") or []):
        if not isinstance(step, dict) or not isinstance(step.get("limit"), int):
            raise VirtError(f"schedule stalling[{i}]: needs an int 'limit' and an 'action'")
        steps.append({"limit": step["limit"], "action": action(step.get("action"), f"stalling[{i}]")})
    # positive limits first, in order; then the "last" actions (limit -1), in order
    steps = [s for s in steps if s["limit"] >= 0] + [s for s in steps if s["limit"] < 0]
    return init, steps


_STAT_KEYS = {
    "data_total": "data_total",
    "data_processed": "data_processed",
    "data_remaining": "data_remaining",
    "memory_iteration": "memory_iteration",
}


def migrate(
    *,
    source_uri: str,
    domain_uuid: str,
    destination_uri: str,
    flags: list[str],
    params: dict,
    schedule: dict,
    timeout: float,
    on_progress: Callable[[dict], None],
    should_cancel: Callable[[], bool],
    poll_interval: float = 0.5,
) -> dict:
    """Live-migrate domain_uuid from source_uri to destination_uri with virDomainMigrateToURI3.

    flags: libvirt constant names ("VIR_MIGRATE_LIVE", ...), OR-ed; an unknown name raises
    VirtError.  params: typed parameters passed as they are ({"parallel.connections": 2, ...}).
    schedule: {"init": [action...], "stalling": [{"limit": n, "action": action}...]}, action =
    {"name": "setDowntime"|"postcopy"|"abort", "params": [...]}.  Init actions run as soon as the
    migration job is visible; a stalling step runs when memory_iteration exceeds its limit, at most
    one step per new iteration, in order; limit -1 steps run last, one per further iteration.

    The call runs in a daemon thread; a second connection polls jobStats every poll_interval s,
    calls on_progress(dict) and should_cancel() (true -> abortJob once).  After timeout s the job
    is aborted and the function returns with timed_out=True without waiting for a stuck call.

    Returns {ok, error_code, error_message, cancelled, timed_out, aborted_by_schedule, actions,
    stats, stats_source, progress, seconds}.  ok only says that libvirt's call returned without
    error: the caller decides success from the domain's state on both hosts.
    Raises VirtError for bad arguments, an unreachable source or a domain not on the source.
    """
    lv = _lv()
    bits = _flag_bits(flags)
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise VirtError("params must be a dict with libvirt typed-parameter names as keys")
    init_actions, steps = _check_schedule(schedule)
    timeout = float(timeout)
    setup_timeout = max(1.0, min(timeout, 30.0))
    have_events = _events()

    def open_dom() -> tuple[Any, Any]:
        conn = lv.open(source_uri)
        try:
            return conn, conn.lookupByUUIDString(domain_uuid)
        except BaseException:
            conn.close()
            raise

    # Two connections to the source: one blocks in migrateToURI3, the other polls and aborts.
    conn, dom = _guarded(open_dom, setup_timeout, f"migrate: open {source_uri}")
    try:
        pconn, pdom = _guarded(open_dom, setup_timeout, f"migrate: open {source_uri}")
    except VirtError:
        conn.close()
        raise

    completed: dict[str, Any] = {}
    callback_id = None
    if have_events:
        try:

            def on_completed(_conn: Any, _dom: Any, stats: dict, _opaque: Any) -> None:
                completed.update(stats)

            callback_id = pconn.domainEventRegisterAny(pdom, lv.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, on_completed, None)
        except Exception as exc:  # final stats then come from polling
            log.debug("cannot register JOB_COMPLETED: %s", exc)

    result: dict[str, Any] = {}

    def run_migration() -> None:
        t = time.monotonic()
        try:
            dom.migrateToURI3(destination_uri, params, bits)
            result["ok"] = True
        except lv.libvirtError as exc:
            result.update(ok=False, code=exc.get_error_code(), message=exc.get_error_message())
        except Exception as exc:  # e.g. TypeError for a wrongly typed param
            result.update(ok=False, code=None, message=f"{type(exc).__name__}: {exc}")
        result["seconds"] = time.monotonic() - t

    out: dict[str, Any] = {
        "ok": False,
        "error_code": None,
        "error_message": None,
        "cancelled": False,
        "timed_out": False,
        "aborted_by_schedule": False,
        "actions": [],
        "stats": {},
        "stats_source": None,
        "progress": 0,
        "seconds": None,
    }
    last_stats: dict[str, Any] = {}
    progress = 0
    init_done = not init_actions
    acted_iteration = 0  # memory iteration at which the last stalling step ran
    next_step = 0
    abort_reason: str | None = None  # "cancel" | "schedule" | "timeout" once abortJob succeeded
    poll_broken = False
    t0 = time.monotonic()
    deadline = t0 + timeout

    def call(fn: Callable[[], Any], what: str, limit: float) -> Any:
        """A call on the polling connection, given up after limit s (then never used again)."""
        nonlocal poll_broken
        if poll_broken:
            raise VirtError(f"{what}: the polling connection to {source_uri} hangs")
        try:
            return _run(fn, limit, what)
        except _TimedOut:
            poll_broken = True
            raise VirtError(f"{what}: no answer within {limit:g} s") from None

    def poll_limit() -> float:  # polls never push the hard timeout back by much
        return max(0.5, min(5.0, deadline - time.monotonic()))

    def abort(reason: str) -> bool:
        nonlocal abort_reason
        if abort_reason is not None:
            return True
        try:
            if poll_broken:  # a fresh connection, the polling one hangs
                _with_conn(source_uri, 5.0, "abortJob", lambda c: c.lookupByUUIDString(domain_uuid).abortJob())
            else:
                call(pdom.abortJob, "abortJob", 5.0)
        except Exception as exc:  # e.g. no job yet: tried again at the next poll
            log.info("abortJob (%s) failed: %s", reason, exc)
            return False
        abort_reason = reason
        return True

    def apply(action: dict, phase: str, iteration: int | None, limit: int | None) -> None:
        entry = dict(
            name=action["name"],
            params=list(action["params"]),
            phase=phase,
            iteration=iteration,
            limit=limit,
            at_s=round(time.monotonic() - t0, 3),
            ok=True,
            error=None,
        )
        try:
            if action["name"] == "setDowntime":
                ms = int(action["params"][0])
                call(lambda: pdom.migrateSetMaxDowntime(ms, 0), "migrateSetMaxDowntime", poll_limit())
            elif action["name"] == "postcopy":
                call(lambda: pdom.migrateStartPostCopy(0), "migrateStartPostCopy", poll_limit())
            elif action["name"] == "abort":
                if not abort("schedule"):
                    raise VirtError("abortJob failed")
                out["aborted_by_schedule"] = True
        except Exception as exc:  # reported; the migration goes on
            entry.update(ok=False, error=str(exc))
        out["actions"].append(entry)
        log.info("migration %s: %s %s -> %s", domain_uuid, phase, action, entry["ok"])

    worker = threading.Thread(target=run_migration, name="virt-migrate", daemon=True)
    worker.start()
    try:
        while True:
            worker.join(poll_interval)
            if not worker.is_alive():
                break
            if time.monotonic() >= deadline:
                out["timed_out"] = True
                abort("timeout")
                # a short grace so that a call that does react to abortJob can report
                worker.join(min(5.0, max(1.0, poll_interval * 4)))
                break

            stats = None
            if not poll_broken:
                try:
                    stats = call(pdom.jobStats, "jobStats", poll_limit())
                except Exception as exc:  # e.g. the domain is gone at the very end
                    log.debug("jobStats: %s", exc)
            if stats and stats.get("type", lv.VIR_DOMAIN_JOB_NONE) != lv.VIR_DOMAIN_JOB_NONE:
                last_stats = dict(stats)
                if not init_done:
                    init_done = True
                    for a in init_actions:
                        apply(a, "init", stats.get("memory_iteration"), None)
                iteration = stats.get("memory_iteration")
                if (
                    isinstance(iteration, int)
                    and next_step < len(steps)
                    and iteration > acted_iteration
                    and iteration > steps[next_step]["limit"]
                    and abort_reason is None
                ):
                    step = steps[next_step]
                    next_step += 1
                    acted_iteration = iteration
                    apply(step["action"], "stalling", iteration, step["limit"])
                total, remaining = stats.get("data_total"), stats.get("data_remaining")
                if isinstance(total, int) and total > 0 and isinstance(remaining, int):
                    progress = max(progress, min(99, int(100 - 100 * remaining / total)))
                report = {"progress": progress}
                report.update({k: stats.get(v) for k, v in _STAT_KEYS.items()})
                if "memory_bps" in stats:
                    report["memory_bps"] = stats["memory_bps"]
                if "downtime" in stats:
                    report["downtime_ms"] = stats["downtime"]
                try:
                    on_progress(report)
                except Exception:  # a broken callback must not break the job
                    log.exception("on_progress failed")

            if not out["cancelled"]:
                try:
                    cancel = bool(should_cancel())
                except Exception:  # a broken callback must not cancel the job
                    log.exception("should_cancel failed")
                    cancel = False
                if cancel:
                    out["cancelled"] = True
            if out["cancelled"] and abort_reason is None:
                abort("cancel")
    finally:
        out["progress"] = progress

    if worker.is_alive():  # stuck inside libvirt even after abortJob: leave it behind
        out["seconds"] = round(time.monotonic() - t0, 3)
        out["error_message"] = f"migration did not return within {timeout:g} s (abandoned)"
        out["stats"], out["stats_source"] = last_stats, "polled" if last_stats else None
        return out

    out["seconds"] = round(result.get("seconds", 0.0), 3)
    out["ok"] = bool(result.get("ok"))
    out["error_code"] = result.get("code")
    out["error_message"] = result.get("message")

    # Final statistics: the JOB_COMPLETED event, or the source's completed job, or the last poll.
    if out["ok"] and callback_id is not None:
        end = time.monotonic() + 1.0
        while not completed and time.monotonic() < end:
            time.sleep(0.02)
    stats, source = dict(completed), "completed"
    if not stats and not poll_broken:
        flag = lv.VIR_DOMAIN_JOB_STATS_COMPLETED | getattr(lv, "VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED", 0)
        try:
            got = call(lambda: pdom.jobStats(flag), "jobStats(completed)", 5.0)
            if got and got.get("type", lv.VIR_DOMAIN_JOB_NONE) != lv.VIR_DOMAIN_JOB_NONE:
                stats = dict(got)
        except Exception as exc:  # e.g. the source domain is undefined now
            log.debug("jobStats(completed): %s", exc)
    if not stats and last_stats:
        stats, source = last_stats, "polled"
    out["stats"], out["stats_source"] = stats, (source if stats else None)

    if not poll_broken:

        def close() -> None:
            if callback_id is not None:
                with contextlib.suppress(lv.libvirtError):
                    pconn.domainEventDeregisterAny(callback_id)
            pconn.close()
            conn.close()

        try:
            _run(close, 5.0, "close")
        except Exception as exc:
            log.debug("closing the migration connections: %s", exc)
    return out
