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
import functools
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ferry_common import logs
from ferry_common.uris import UnsafeURI, check_libvirt_uri, check_migrate_uri
from ferry_common.vocabulary import CONVERGENCE_ACTIONS

log = logging.getLogger(__name__)

__all__ = [
    "SCHEDULE_ACTIONS",
    "ConvergenceSchedule",
    "Migration",
    "MigrationMonitor",
    "VirtError",
    "abort_job",
    "active_domain_uuids",
    "domain_state",
    "follow_job",
    "host_capabilities",
    "job_running",
    "list_domains",
    "memtune_hard_limit_mib",
    "migrate",
]

#: Convergence schedule actions migrate() understands (oVirt's names).
SCHEDULE_ACTIONS = CONVERGENCE_ACTIONS
#: Vdsm's migration_monitor_interval: the schedule is considered once per pulse.
DEFAULT_PULSE_S = 10.0

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

    th = threading.Thread(target=logs.in_context(target), name=f"virt-{name}", daemon=True)
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


def _floor(uri: Any, *, migrate: bool = False) -> str:
    """The last check before libvirt, whatever the caller's own allow-list (ferry_agent.checks) let
    through: never a transport that starts a program, never a query parameter but a socket path."""
    try:
        if migrate:
            return check_migrate_uri(uri)
        return check_libvirt_uri(uri, allow_tcp=True, socket_dirs=("/",))
    except UnsafeURI as error:
        raise VirtError(f"refused before libvirt: {uri!r}: {error}") from None


def _with_conn(uri: str, timeout: float, what: str, fn: Callable[[Any], Any]) -> Any:
    """Open uri, run fn(conn), close it: all in one guarded thread."""
    uri = _floor(uri)
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
def host_capabilities(uri: str, *, timeout: float = 30.0, migration_address: str | None = None) -> dict:
    """What the libvirt host at uri can do.

    Returns exactly: libvirt_version (str, "9.0.0"), qemu_version (str, "7.2.0"), agent_version
    (str, the libvirt-python binding version), zerocopy_migrations (bool), parallel_migrations
    (bool), cpu_count (int), memory_mib (int), link_speed_mbps (int | None: the speed of the NIC
    that carries migration_address, the host's migration address, as the host's node-device
    driver reports it; None when unknown, see _link_speed).
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
            "link_speed_mbps": _link_speed(conn, migration_address),
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


def _link_speed(conn: Any, address: str | None) -> int | None:
    """The speed (Mbit/s) of the NIC that carries address, the host's migration address: the
    interface of this machine that has that address, or, when that interface has no speed of its
    own (a bridge, a bond or a VLAN over other devices), the fastest "up" device under it. The
    speeds are those of libvirt's node-device driver; a host name is resolved first. None when
    unknown: no address, a loopback address, a name that does not resolve, no interface of this
    machine has it, or no speed is reported. The agent runs on the hypervisor, so its own
    interfaces are the host's."""
    ips = [ip for ip in _addresses_of(address) if not ip.is_loopback]
    names = [name for ip in ips for name in interfaces_with_address(ip)]
    if not names:
        log.info("link speed: no interface of this machine has the migration address %s", address)
        return None
    speeds = _node_device_speeds(conn)
    found = [speed for name in names if (speed := _speed_under(name, speeds)) is not None]
    return max(found) if found else None


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")  # RFC 1123, nothing else


def _addresses_of(address: str | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The IP addresses address names: itself when it is one, else what the host name resolves to
    (within 10 s); [] for anything else."""
    if not address:
        return []
    try:
        return [ipaddress.ip_address(address.strip("[]"))]
    except ValueError:
        pass
    if not _HOSTNAME.match(address):
        return []
    try:
        infos = _run(lambda: socket.getaddrinfo(address, None, type=socket.SOCK_STREAM), 10, "resolve")
    except (_TimedOut, OSError) as exc:
        log.info("link speed: cannot resolve %s: %s", address, exc)
        return []
    found = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _node_device_speeds(conn: Any) -> dict[str, int]:
    """interface name -> link speed (Mbit/s) of the "up" network devices libvirt reports."""
    lv = _libvirt
    try:
        devices = conn.listAllDevices(lv.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)
    except Exception:  # no node-device driver: unknown
        return {}
    speeds: dict[str, int] = {}
    for dev in devices:
        try:
            # the XML comes from the libvirt daemon itself, not from an untrusted party
            capability = ET.fromstring(dev.XMLDesc(0)).find("./capability")  # noqa: S314
        except Exception as exc:
            log.debug("node device XML: %s", exc)
            continue
        if capability is None:
            continue
        name, link = capability.findtext("interface"), capability.find("link")
        if not name or link is None or link.get("state") != "up" or not (link.get("speed") or "").isdigit():
            continue
        speeds[name] = int(link.get("speed") or 0)
    return speeds


_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")  # a Linux interface name, never a path
SYS_CLASS_NET = Path("/sys/class/net")


def _speed_under(name: str, speeds: dict[str, int], depth: int = 0) -> int | None:
    """name's own speed, else the fastest of the devices under it (/sys/class/net/<name>/lower_*)."""
    if not _IFNAME.match(name) or name in (".", ".."):
        return None
    if name in speeds:
        return speeds[name]
    if depth >= 4:
        return None
    below = [_speed_under(p.name.removeprefix("lower_"), speeds, depth + 1) for p in lower_devices(name)]
    found = [speed for speed in below if speed is not None]
    return max(found) if found else None


def lower_devices(name: str) -> list[Path]:
    """The devices under interface name (a bridge's ports, a bond's slaves, a VLAN's parent)."""
    if not _IFNAME.match(name) or name in (".", ".."):
        return []
    try:
        return sorted((SYS_CLASS_NET / name).glob("lower_*"))
    except OSError:
        return []


def interfaces_with_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """The names of this machine's interfaces that have the address ip (`ip -json address show`)."""
    ip_tool = shutil.which("ip")  # iproute2; fixed arguments, nothing from outside
    if ip_tool is None:
        log.info("link speed: iproute2's ip is missing: this machine's addresses are unknown")
        return []
    try:
        out = subprocess.run(  # noqa: S603 (the ip tool found on PATH, fixed arguments)
            [ip_tool, "-json", "address", "show"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        interfaces = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.info("link speed: cannot list this machine's addresses: %s", exc)
        return []
    names = []
    for interface in interfaces if isinstance(interfaces, list) else []:
        for info in interface.get("addr_info") or []:
            try:
                if ipaddress.ip_address(str(info.get("local"))) == ip:
                    names.append(str(interface.get("ifname")))
            except ValueError:
                continue
    return names


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


#: The largest memtune hard limit reported (1 EiB, Ferry's own bound): more is refused.
MAX_HARD_LIMIT_MIB = 2**40
#: libvirt's VIR_DOMAIN_MEMORY_PARAM_UNLIMITED (KiB): a hard limit of "no limit".
_UNLIMITED_KIB = 9_007_199_254_740_991
#: A domain XML larger than this is not read (libvirt's own are a few KiB).
MAX_DOMAIN_XML = 4 * 1024 * 1024
#: libvirt's scaled-integer units (case-insensitive, as libvirt reads them); none means KiB.
_UNITS = {
    "b": 1,
    "bytes": 1,
    "kb": 10**3,
    "k": 2**10,
    "kib": 2**10,
    "mb": 10**6,
    "m": 2**20,
    "mib": 2**20,
    "gb": 10**9,
    "g": 2**30,
    "gib": 2**30,
    "tb": 10**12,
    "t": 2**40,
    "tib": 2**40,
    "pb": 10**15,
    "p": 2**50,
    "pib": 2**50,
    "eb": 10**18,
    "e": 2**60,
    "eib": 2**60,
}


def memtune_hard_limit_mib(xml: str) -> int | None:
    """The <memtune><hard_limit> of a domain XML in MiB (floored), or None when it declares none.

    The XML is read as untrusted text: a document with a DTD or entities, one too large, a value
    that is not a plain whole number, an unknown unit or a limit above MAX_HARD_LIMIT_MIB raise
    ValueError (the caller then reports nothing about the limit rather than a wrong one)."""
    if not isinstance(xml, str) or len(xml) > MAX_DOMAIN_XML:
        raise ValueError("the domain XML is not text, or is too large")
    upper = xml.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        # libvirt never writes a DTD or an entity: refuse what could expand or fetch
        raise ValueError("the domain XML carries a DTD or an entity declaration")
    try:
        root = ET.fromstring(xml)  # noqa: S314 - no DTD or entity can reach the parser (checked above)
    except ET.ParseError as error:
        raise ValueError(f"the domain XML does not parse: {error}") from None
    limits = root.findall("./memtune/hard_limit")
    if not limits:
        return None
    if len(limits) > 1:
        raise ValueError("the domain XML declares <hard_limit> twice")
    element = limits[0]
    text = (element.text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 24:
        raise ValueError(f"hard_limit {text[:30]!r} is not a whole number")
    unit = (element.get("unit") or "KiB").strip().lower()
    if unit not in _UNITS:
        raise ValueError(f"hard_limit has an unknown unit {unit[:20]!r}")
    value = int(text)
    if _UNITS[unit] == 2**10 and value >= _UNLIMITED_KIB:
        return None  # libvirt's own "unlimited"
    mib = value * _UNITS[unit] // 2**20
    if mib > MAX_HARD_LIMIT_MIB:
        raise ValueError(f"hard_limit of {mib} MiB is above {MAX_HARD_LIMIT_MIB} MiB")
    return mib


def list_domains(uri: str, *, timeout: float = 30.0) -> list[dict]:
    """All domains (active and defined) of the host at uri.

    Each: {uuid (str), name (str), memory_mib (int, maximum memory), vcpus (int), state,
    memtune_hard_limit_mib (int MiB, or None when the domain declares no <memtune><hard_limit>)},
    state being "up" (running), "paused", "migrating" (paused by a migration), "down" (shut off or
    crashed) or "unknown". A hard limit that cannot be read (memtune_hard_limit_mib) leaves the key
    out, and is logged. Raises VirtError when the host cannot be reached.
    """
    lv = _lv()

    def work(conn: Any) -> list[dict]:
        out = []
        for dom in conn.listAllDomains(0):
            try:
                state, reason = dom.state()
                info = dom.info()  # [state, maxMem KiB, memory KiB, nrVirtCpu, cpuTime]
                domain = {
                    "uuid": dom.UUIDString(),
                    "name": dom.name(),
                    "memory_mib": int(info[1]) // 1024,
                    "vcpus": int(info[3]),
                    "state": _state_name(state, reason),
                }
                try:
                    domain["memtune_hard_limit_mib"] = memtune_hard_limit_mib(dom.XMLDesc(0))
                except ValueError as error:
                    log.warning("domain %s: memtune hard limit not reported: %s", domain["uuid"], error)
                out.append(domain)
            except lv.libvirtError as exc:
                if exc.get_error_code() != lv.VIR_ERR_NO_DOMAIN:
                    raise
                # it went away while we listed (e.g. migrated with UNDEFINE_SOURCE)
        return sorted(out, key=lambda d: (d["name"], d["uuid"]))

    return _with_conn(uri, timeout, "list domains", work)


def active_domain_uuids(uri: str, *, timeout: float = 30.0) -> list[str]:
    """The UUIDs of the domains that run (or are paused) on the host at uri: those with a QEMU."""
    lv = _lv()

    def work(conn: Any) -> list[str]:
        return sorted(dom.UUIDString() for dom in conn.listAllDomains(lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE))

    return _with_conn(uri, timeout, "active domains", work)


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


def job_running(uri: str, uuid: str, *, timeout: float = 30.0) -> bool:
    """Whether domain uuid at uri has a libvirt job running now (e.g. an outgoing migration)."""
    lv = _lv()

    def work(conn: Any) -> bool:
        try:
            stats = conn.lookupByUUIDString(uuid).jobStats()
        except lv.libvirtError as exc:
            if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                return False
            raise
        return bool(stats) and stats.get("type", lv.VIR_DOMAIN_JOB_NONE) != lv.VIR_DOMAIN_JOB_NONE

    return bool(_with_conn(uri, timeout, "job running", work))


def follow_job(
    uri: str,
    uuid: str,
    *,
    on_progress: Callable[[dict], None],
    should_cancel: Callable[[], bool],
    schedule: dict | None = None,
    steps_done: int = 0,
    pulse_s: float = DEFAULT_PULSE_S,
    stall_s: float | None = None,
    poll_interval: float = 0.5,
    call_timeout: float = 10.0,
) -> dict:
    """Watch a migration that libvirt already runs on the source (its agent restarted under it)
    until the job ends: progress reported as migrate() reports it, cancel by abortJob, and the
    plan's convergence schedule resumed after the `steps_done` stalling steps that already ran
    (counted in memory passes from the first pulse of this watch), with the stall watchdog.

    Returns {"cancelled", "aborted_by_schedule", "stalled", "actions", "progress", "seconds",
    "stats"}. Raises VirtError for a malformed schedule or when the source cannot be reached; a
    host that stops answering mid-way ends the watch (the caller reads the states)."""
    monitor = MigrationMonitor(schedule, timeout=None, started_at=time.monotonic(), pulse_s=pulse_s, stall_s=stall_s)
    monitor.schedule.init_done = True  # the init actions ran when the migration started
    monitor.schedule.next_step = max(0, min(int(steps_done), len(monitor.schedule.steps)))
    lv = _lv()
    uri = _floor(uri)

    def open_dom() -> tuple[Any, Any]:
        conn = lv.open(uri)
        try:
            return conn, conn.lookupByUUIDString(uuid)
        except BaseException:
            conn.close()
            raise

    conn, dom = _guarded(open_dom, call_timeout, f"follow job: open {uri}")
    started = time.monotonic()

    def abort(reason: str) -> None:
        if monitor.abort_reason is None:
            try:
                _guarded(dom.abortJob, call_timeout, "abortJob")
                monitor.aborted(reason)
            except VirtError as exc:
                log.info("follow job %s: abortJob (%s): %s", uuid, reason, exc)

    try:
        while True:
            try:
                stats = _guarded(dom.jobStats, call_timeout, "jobStats")
            except VirtError as exc:
                log.info("follow job %s: %s", uuid, exc)
                break
            if not stats or stats.get("type", lv.VIR_DOMAIN_JOB_NONE) == lv.VIR_DOMAIN_JOB_NONE:
                break
            report = monitor.observe(stats)
            for phase, action, limit in monitor.actions_due():
                error = None
                try:
                    if action["name"] == "setDowntime":
                        ms = int(action["params"][0])
                        _guarded(functools.partial(dom.migrateSetMaxDowntime, ms, 0), call_timeout, "setDowntime")
                    elif action["name"] == "postcopy":
                        _guarded(lambda: dom.migrateStartPostCopy(0), call_timeout, "postcopy")
                    elif action["name"] == "abort":
                        abort("schedule")
                except VirtError as exc:
                    error = str(exc)
                monitor.record(phase, action, limit, time.monotonic(), error)
            if monitor.actions:
                report["actions"] = [dict(entry) for entry in monitor.actions]
            try:
                on_progress(report)
            except Exception:  # a broken callback must not break the watch
                log.exception("on_progress failed")
            if monitor.cancel_answer(bool(should_cancel())):
                abort("cancel")
            if monitor.overdue(time.monotonic()):
                abort("stalled")
            time.sleep(poll_interval)
    finally:
        with contextlib.suppress(Exception):
            _run(conn.close, 5.0, "close")
    outcome = monitor.result()
    return outcome | {"seconds": time.monotonic() - started, "stats": monitor.last_stats}


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


class ConvergenceSchedule:
    """Which convergence actions are due, paced as Vdsm's migration monitor paces them.

    Init actions are due with the first statistics of the migration job.  The stalling steps are
    considered once per pulse (due_stalling is called by the monitor at each pulse, every 10 s by
    default): the memory iteration seen at the first pulse is the baseline; at a later pulse where
    the iteration has grown, current = iteration - baseline, and the head of the list runs if its
    limit is below current, at most one step per pulse.  The "last" steps (limit -1) follow, one
    per further pulse with a new iteration.  Nothing runs once post-copy has started or while the
    migration is being aborted.  Pure: no libvirt.
    """

    def __init__(self, schedule: dict | None):
        self.init, self.steps = _check_schedule(schedule)
        self.init_done = not self.init
        self.next_step = 0
        self.baseline: int | None = None  # the memory iteration at the first pulse
        self.last_iteration: int | None = None  # the memory iteration at the previous pulse
        self.postcopy_started = False

    def due_init(self) -> list[tuple[str, dict, int | None]]:
        """The init actions, the first time this is asked (with the job's first statistics)."""
        if self.init_done:
            return []
        self.init_done = True
        return [("init", action, None) for action in self.init]

    def due_stalling(self, iteration: Any, *, aborting: bool = False) -> list[tuple[str, dict, int | None]]:
        """At one pulse: the stalling step to run now (at most one), given the job's memory_iteration."""
        if not isinstance(iteration, int) or isinstance(iteration, bool):
            return []
        if self.baseline is None:
            self.baseline = self.last_iteration = iteration
            return []
        grew = self.last_iteration is None or iteration > self.last_iteration
        self.last_iteration = iteration
        if aborting or self.postcopy_started or not grew or self.next_step >= len(self.steps):
            return []
        step = self.steps[self.next_step]
        if step["limit"] >= iteration - self.baseline:
            return []
        self.next_step += 1
        return [("stalling", step["action"], step["limit"])]


_STAT_KEYS = ("data_total", "data_processed", "data_remaining", "memory_iteration")


def progress_of(stats: dict, previous: int) -> int:
    """0..99 from the job's data figures, never below the previous value (100 only at the end)."""
    total, remaining = stats.get("data_total"), stats.get("data_remaining")
    if isinstance(total, int) and total > 0 and isinstance(remaining, int):
        return max(previous, min(99, int(100 - 100 * remaining / total)))
    return previous


def progress_report(stats: dict, progress: int) -> dict:
    """What on_progress receives: the progress and libvirt's figures under Ferry's names."""
    report: dict[str, Any] = {"progress": progress}
    report.update({key: stats.get(key) for key in _STAT_KEYS})
    if "memory_bps" in stats:
        report["memory_bps"] = stats["memory_bps"]
    if "downtime" in stats:
        report["downtime_ms"] = stats["downtime"]
    rate, page = stats.get("memory_dirty_rate"), stats.get("memory_page_size")
    if isinstance(rate, int) and isinstance(page, int):
        report["dirty_bps"] = rate * page  # pages dirtied per second, in bytes
    return report


class MigrationMonitor:
    """The decisions of one running migration, from what polling observes.  Pure: no libvirt.

    Each poll feeds it the clock, the job's statistics and the answer to "cancel?"; it answers
    what to do: report progress, run schedule actions (paced by the pulse), abort (and why), or
    give up waiting.  There is no total time limit unless one is given (timeout None or 0: none,
    as in Vdsm): a migration ends by its schedule, by cancel, or by the stall watchdog, which
    aborts when the data still to send has not reached a new low for stall_s seconds (None or 0:
    off).  Abort reasons: "timeout" (the optional hard limit passed), "stalled" (the watchdog),
    "cancel" (asked for), "schedule" (an abort action).  An abort that libvirt refused is asked
    for again at the next poll.
    """

    def __init__(
        self,
        schedule: dict | None,
        *,
        timeout: float | None,
        started_at: float,
        pulse_s: float = DEFAULT_PULSE_S,
        stall_s: float | None = None,
    ):
        self.schedule = ConvergenceSchedule(schedule)
        self.timeout = float(timeout) if timeout and timeout > 0 else None
        self.pulse_s = max(0.01, float(pulse_s))
        self.stall_s = float(stall_s) if stall_s and stall_s > 0 else None
        self.begin(started_at)
        self.progress = 0
        self.last_stats: dict[str, Any] = {}
        self.cancelled = False
        self.timed_out = False
        self.stalled = False
        self.aborted_by_schedule = False
        self.abort_reason: str | None = None  # set once an abortJob succeeded
        self.actions: list[dict] = []

    def begin(self, now: float) -> None:
        """The call starts now: the hard limit, the pulses and the stall watchdog count from here."""
        self.started_at = now
        self.deadline = now + self.timeout if self.timeout is not None else None
        self.next_pulse = now + self.pulse_s
        self.lowmark: int | None = None
        self.lowmark_at = now

    def overdue(self, now: float) -> bool:
        """The hard limit has passed, or the migration stalled: abort and stop waiting (once)."""
        if self.deadline is not None and now >= self.deadline:
            self.timed_out = True
        if (
            self.stall_s is not None
            and not self.schedule.postcopy_started  # post-copy cannot be aborted; it ends by itself
            and now - self.lowmark_at >= self.stall_s
        ):
            self.stalled = True
        return self.timed_out or self.stalled

    def poll_limit(self, now: float) -> float:
        """How long one call on the polling connection may take: never pushes the limit back by much."""
        if self.deadline is None:
            return 5.0
        return max(0.5, min(5.0, self.deadline - now))

    def observe(self, stats: dict, now: float | None = None) -> dict:
        """Statistics of an active job: the progress report to send."""
        self.last_stats = dict(stats)
        self.progress = progress_of(stats, self.progress)
        remaining = stats.get("data_remaining")
        if isinstance(remaining, int) and (self.lowmark is None or remaining < self.lowmark):
            self.lowmark = remaining
            self.lowmark_at = time.monotonic() if now is None else now
        return progress_report(stats, self.progress)

    def actions_due(self, now: float | None = None) -> Iterator[tuple[str, dict, int | None]]:
        """The schedule's actions due after the statistics just observed, in order: the init actions
        (once), then, when a pulse is due, at most one stalling step."""
        yield from self.schedule.due_init()
        now = time.monotonic() if now is None else now
        if now < self.next_pulse:
            return
        # The next pulse is one interval from this one; pulses missed while a call blocked are not
        # made up for (Vdsm's monitor thread waits one interval after each pulse as well).
        self.next_pulse = max(self.next_pulse + self.pulse_s, now + self.pulse_s / 2)
        iteration = self.last_stats.get("memory_iteration")
        yield from self.schedule.due_stalling(iteration, aborting=self.abort_reason is not None)

    def cancel_answer(self, requested: bool) -> bool:
        """The caller's answer to "cancel?"; True while an abort for the cancel is still to be done."""
        self.cancelled = self.cancelled or requested
        return self.cancelled and self.abort_reason is None

    def aborted(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        if reason == "schedule":
            self.aborted_by_schedule = True

    def record(self, phase: str, action: dict, limit: int | None, now: float, error: str | None) -> dict:
        if action["name"] == "postcopy" and error is None:
            self.schedule.postcopy_started = True
        entry = {
            "name": action["name"],
            "params": list(action["params"]),
            "phase": phase,
            "iteration": self.last_stats.get("memory_iteration"),
            "limit": limit,
            "at_s": round(now - self.started_at, 3),
            "ok": error is None,
            "error": error,
        }
        self.actions.append(entry)
        return entry

    def result(self) -> dict:
        """The outcome fields the monitor knows (the caller adds libvirt's)."""
        return {
            "cancelled": self.cancelled,
            "timed_out": self.timed_out,
            "stalled": self.stalled,
            "aborted_by_schedule": self.aborted_by_schedule,
            "postcopy_started": self.schedule.postcopy_started,
            "actions": self.actions,
            "progress": self.progress,
        }


class Migration:
    """One virDomainMigrateToURI3 call on the source, watched and steered from a second connection.

    start() opens the two connections and starts the call in a daemon thread; poll() waits
    poll_interval, reads the job's statistics, reports progress, applies the schedule and honours
    cancel and the hard limit, and says whether to go on; finish() collects the final statistics
    and the result.  run() does all three.  The decisions are MigrationMonitor's.
    """

    def __init__(
        self,
        *,
        source_uri: str,
        domain_uuid: str,
        destination_uri: str,
        flags: list[str],
        params: dict,
        schedule: dict,
        timeout: float | None,
        on_progress: Callable[[dict], None],
        should_cancel: Callable[[], bool],
        poll_interval: float = 0.5,
        pulse_s: float = DEFAULT_PULSE_S,
        stall_s: float | None = None,
    ):
        self.source_uri = _floor(source_uri)
        self.destination_uri = _floor(destination_uri)
        if isinstance(params, dict) and "migrate_uri" in params:
            _floor(params["migrate_uri"], migrate=True)
        self.lv = _lv()
        self.bits = _flag_bits(flags)
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise VirtError("params must be a dict with libvirt typed-parameter names as keys")
        self.domain_uuid = domain_uuid
        self.params = params
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.poll_interval = poll_interval
        self.monitor = MigrationMonitor(
            schedule, timeout=timeout, started_at=time.monotonic(), pulse_s=pulse_s, stall_s=stall_s
        )
        self.timeout = self.monitor.timeout  # None: no total limit
        self.completed: dict[str, Any] = {}  # the JOB_COMPLETED event's statistics
        self.call_result: dict[str, Any] = {}
        self.callback_id = None
        self.poll_broken = False  # the polling connection hung once: never used again
        self.worker: threading.Thread | None = None

    # -- the libvirt side
    def _open_dom(self) -> tuple[Any, Any]:
        conn = self.lv.open(self.source_uri)
        try:
            return conn, conn.lookupByUUIDString(self.domain_uuid)
        except BaseException:
            conn.close()
            raise

    def start(self) -> None:
        lv = self.lv
        setup_timeout = max(1.0, min(self.timeout or 30.0, 30.0))
        have_events = _events()
        # Two connections to the source: one blocks in migrateToURI3, the other polls and aborts.
        what = f"migrate: open {self.source_uri}"
        self.conn, self.dom = _guarded(self._open_dom, setup_timeout, what)
        try:
            self.pconn, self.pdom = _guarded(self._open_dom, setup_timeout, what)
        except VirtError:
            self.conn.close()
            raise
        if have_events:
            try:
                self.callback_id = self.pconn.domainEventRegisterAny(
                    self.pdom, lv.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_completed, None
                )
            except Exception as exc:  # final stats then come from polling
                log.debug("cannot register JOB_COMPLETED: %s", exc)
        self.monitor.begin(time.monotonic())
        self.worker = threading.Thread(target=logs.in_context(self._call), name="virt-migrate", daemon=True)
        self.worker.start()

    def _on_completed(self, _conn: Any, _dom: Any, stats: dict, _opaque: Any) -> None:
        self.completed.update(stats)

    def _call(self) -> None:
        started = time.monotonic()
        try:
            self.dom.migrateToURI3(self.destination_uri, self.params, self.bits)
            self.call_result["ok"] = True
        except self.lv.libvirtError as exc:
            self.call_result.update(ok=False, code=exc.get_error_code(), message=exc.get_error_message())
        except Exception as exc:  # e.g. TypeError for a wrongly typed param
            self.call_result.update(ok=False, code=None, message=f"{type(exc).__name__}: {exc}")
        self.call_result["seconds"] = time.monotonic() - started

    def _poll_call(self, fn: Callable[[], Any], what: str, limit: float) -> Any:
        """A call on the polling connection, given up after limit s (then never used again)."""
        if self.poll_broken:
            raise VirtError(f"{what}: the polling connection to {self.source_uri} hangs")
        try:
            return _run(fn, limit, what)
        except _TimedOut:
            self.poll_broken = True
            raise VirtError(f"{what}: no answer within {limit:g} s") from None

    def abort(self, reason: str) -> bool:
        """abortJob, once; False when libvirt refused it (e.g. no job yet: asked again later)."""
        if self.monitor.abort_reason is not None:
            return True
        try:
            if self.poll_broken:  # a fresh connection, the polling one hangs
                _with_conn(
                    self.source_uri, 5.0, "abortJob", lambda c: c.lookupByUUIDString(self.domain_uuid).abortJob()
                )
            else:
                self._poll_call(self.pdom.abortJob, "abortJob", 5.0)
        except Exception as exc:
            log.info("abortJob (%s) failed: %s", reason, exc)
            return False
        self.monitor.aborted(reason)
        return True

    def apply(self, phase: str, action: dict, limit: int | None) -> None:
        """Run one schedule action; a failure is recorded and the migration goes on."""
        error = None
        limit_s = self.monitor.poll_limit(time.monotonic())
        try:
            if action["name"] == "setDowntime":
                ms = int(action["params"][0])
                self._poll_call(lambda: self.pdom.migrateSetMaxDowntime(ms, 0), "migrateSetMaxDowntime", limit_s)
            elif action["name"] == "postcopy":
                self._poll_call(lambda: self.pdom.migrateStartPostCopy(0), "migrateStartPostCopy", limit_s)
            elif action["name"] == "abort" and not self.abort("schedule"):
                raise VirtError("abortJob failed")
        except Exception as exc:
            error = str(exc)
        entry = self.monitor.record(phase, action, limit, time.monotonic(), error)
        log.info("migration %s: %s %s -> %s", self.domain_uuid, phase, action, entry["ok"])

    def _job_stats(self) -> dict | None:
        if self.poll_broken:
            return None
        try:
            stats = self._poll_call(self.pdom.jobStats, "jobStats", self.monitor.poll_limit(time.monotonic()))
        except Exception as exc:  # e.g. the domain is gone at the very end
            log.debug("jobStats: %s", exc)
            return None
        if not stats or stats.get("type", self.lv.VIR_DOMAIN_JOB_NONE) == self.lv.VIR_DOMAIN_JOB_NONE:
            return None
        return stats

    def poll(self) -> bool:
        """One round of watching; False once the call has returned or been given up."""
        if self.worker is None:
            raise RuntimeError("start() first")
        self.worker.join(self.poll_interval)
        if not self.worker.is_alive():
            return False
        if self.monitor.overdue(time.monotonic()):
            self.abort("timeout" if self.monitor.timed_out else "stalled")
            # a short grace so that a call that does react to abortJob can report
            self.worker.join(min(5.0, max(1.0, self.poll_interval * 4)))
            return False
        stats = self._job_stats()
        if stats is not None:
            report = self.monitor.observe(stats)
            for phase, action, limit in self.monitor.actions_due():
                self.apply(phase, action, limit)
            if self.monitor.actions:  # the schedule's steps so far, for the job page of a long run
                report["actions"] = [dict(entry) for entry in self.monitor.actions]
            try:
                self.on_progress(report)
            except Exception:  # a broken callback must not break the job
                log.exception("on_progress failed")
        try:
            requested = not self.monitor.cancelled and bool(self.should_cancel())
        except Exception:  # a broken callback must not cancel the job
            log.exception("should_cancel failed")
            requested = False
        if self.monitor.cancel_answer(requested):
            self.abort("cancel")
        return True

    def _final_stats(self) -> tuple[dict, str | None]:
        """The JOB_COMPLETED event's statistics, or the source's completed job, or the last poll."""
        lv = self.lv
        if self.call_result.get("ok") and self.callback_id is not None:
            end = time.monotonic() + 1.0
            while not self.completed and time.monotonic() < end:
                time.sleep(0.02)
        stats, source = dict(self.completed), "completed"
        if not stats and not self.poll_broken:
            flag = lv.VIR_DOMAIN_JOB_STATS_COMPLETED | getattr(lv, "VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED", 0)
            try:
                got = self._poll_call(lambda: self.pdom.jobStats(flag), "jobStats(completed)", 5.0)
                if got and got.get("type", lv.VIR_DOMAIN_JOB_NONE) != lv.VIR_DOMAIN_JOB_NONE:
                    stats = dict(got)
            except Exception as exc:  # e.g. the source domain is undefined now
                log.debug("jobStats(completed): %s", exc)
        if not stats and self.monitor.last_stats:
            stats, source = self.monitor.last_stats, "polled"
        return stats, (source if stats else None)

    def _close(self) -> None:
        def close() -> None:
            if self.callback_id is not None:
                with contextlib.suppress(self.lv.libvirtError):
                    self.pconn.domainEventDeregisterAny(self.callback_id)
            self.pconn.close()
            self.conn.close()

        try:
            _run(close, 5.0, "close")
        except Exception as exc:
            log.debug("closing the migration connections: %s", exc)

    def finish(self) -> dict:
        """The result, once poll() said stop."""
        if self.worker is None:
            raise RuntimeError("start() first")
        out: dict[str, Any] = {
            "ok": False,
            "error_code": None,
            "error_message": None,
            **self.monitor.result(),
            "stats": {},
            "stats_source": None,
            "seconds": None,
        }
        if self.worker.is_alive():  # stuck inside libvirt even after abortJob: leave it behind
            out["seconds"] = round(time.monotonic() - self.monitor.started_at, 3)
            why = "the stall watchdog" if self.monitor.stalled else f"the {self.timeout:g} s limit"
            out["error_message"] = f"migration did not return after abortJob ({why}); abandoned"
            last = self.monitor.last_stats
            out["stats"], out["stats_source"] = last, "polled" if last else None
            return out
        out["seconds"] = round(self.call_result.get("seconds", 0.0), 3)
        out["ok"] = bool(self.call_result.get("ok"))
        out["error_code"] = self.call_result.get("code")
        out["error_message"] = self.call_result.get("message")
        out["stats"], out["stats_source"] = self._final_stats()
        if not self.poll_broken:
            self._close()
        return out

    def run(self) -> dict:
        self.start()
        while self.poll():
            pass
        return self.finish()


def migrate(
    *,
    source_uri: str,
    domain_uuid: str,
    destination_uri: str,
    flags: list[str],
    params: dict,
    schedule: dict,
    timeout: float | None,
    on_progress: Callable[[dict], None],
    should_cancel: Callable[[], bool],
    poll_interval: float = 0.5,
    pulse_s: float = DEFAULT_PULSE_S,
    stall_s: float | None = None,
) -> dict:
    """Live-migrate domain_uuid from source_uri to destination_uri with virDomainMigrateToURI3.

    flags: libvirt constant names ("VIR_MIGRATE_LIVE", ...), OR-ed; an unknown name raises
    VirtError.  params: typed parameters passed as they are ({"parallel.connections": 2, ...}).
    schedule: {"init": [action...], "stalling": [{"limit": n, "action": action}...]}, action =
    {"name": "setDowntime"|"postcopy"|"abort", "params": [...]}.  Init actions run as soon as the
    migration job is visible; the stalling steps are paced as Vdsm paces them (ConvergenceSchedule):
    at most one step per pulse of pulse_s seconds, counted in memory iterations since the first
    pulse; limit -1 steps run last; nothing runs after post-copy has started.

    The call runs in a daemon thread; a second connection polls jobStats every poll_interval s,
    calls on_progress(dict) and should_cancel() (true -> abortJob once).  There is no total time
    limit unless timeout is given (None or 0: none); stall_s (None or 0: off) aborts a migration
    whose data still to send has reached no new low for that long.  After an abort for either,
    the function returns (timed_out or stalled True) without waiting for a stuck call.

    Returns {ok, error_code, error_message, cancelled, timed_out, stalled, aborted_by_schedule,
    postcopy_started, actions, stats, stats_source, progress, seconds}.  ok only says that libvirt's
    call returned without error: the caller decides success from the domain's state on both hosts.
    Raises VirtError for bad arguments, an unreachable source or a domain not on the source.
    """
    return Migration(
        source_uri=source_uri,
        domain_uuid=domain_uuid,
        destination_uri=destination_uri,
        flags=flags,
        params=params,
        schedule=schedule,
        timeout=timeout,
        on_progress=on_progress,
        should_cancel=should_cancel,
        poll_interval=poll_interval,
        pulse_s=pulse_s,
        stall_s=stall_s,
    ).run()
