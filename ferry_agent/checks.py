"""What the agent accepts from Ferry: every URI, flag and parameter, checked on the hypervisor.

Ferry checks a host's URIs when they are stored and the resolver builds only sound plans, but the
agent does not take that on trust: whatever reaches libvirt here is checked again against this
machine's own allow-list (ferry_common.uris, with the agent's --allow-tcp and --socket-dir options), so a
compromised or mistaken Ferry still cannot make this host open a program, a file or an
unauthenticated daemon, or migrate with flags or parameters no plan of Ferry's contains.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ferry_common.uris import UnsafeURI, check_host_name, check_libvirt_uri, check_migrate_uri

__all__ = ["PLAN_FLAGS", "PLAN_PARAMS", "Order", "Refused", "UriPolicy", "check_order"]

#: Every flag a plan of Ferry's may carry (migrations_app/resolver.py builds them).
PLAN_FLAGS = frozenset(
    {
        "VIR_MIGRATE_LIVE",
        "VIR_MIGRATE_PEER2PEER",
        "VIR_MIGRATE_ABORT_ON_ERROR",
        "VIR_MIGRATE_PERSIST_DEST",
        "VIR_MIGRATE_UNDEFINE_SOURCE",
        "VIR_MIGRATE_AUTO_CONVERGE",
        "VIR_MIGRATE_COMPRESSED",
        "VIR_MIGRATE_TLS",
        "VIR_MIGRATE_POSTCOPY",
        "VIR_MIGRATE_PARALLEL",
        "VIR_MIGRATE_ZEROCOPY",
    }
)
#: Every typed parameter a plan may carry, and what its value must be.
PLAN_PARAMS = ("migrate_uri", "tls.destination", "parallel.connections", "bandwidth")
MAX_CONNECTIONS = 255


class Refused(ValueError):
    """Ferry sent something this agent does not do."""


@dataclass(frozen=True)
class UriPolicy:
    """This machine's allow-list for libvirt URIs (ferry_common.uris with the agent's own options)."""

    allow_tcp: bool = False
    socket_dirs: tuple[str, ...] = ()

    def libvirt(self, uri: Any) -> str:
        try:
            return check_libvirt_uri(uri, allow_tcp=self.allow_tcp, socket_dirs=self.socket_dirs)
        except UnsafeURI as error:
            raise Refused(f"libvirt URI {uri!r} refused: {error}") from None

    def describe(self) -> str:
        dirs = ", ".join(self.socket_dirs) or "none"
        return f"qemu+tcp:// {'allowed' if self.allow_tcp else 'refused'}; socket= directories: {dirs}"


@dataclass(frozen=True)
class Order:
    """A claimed job, checked: what virt.migrate gets."""

    job_id: str
    vm_uuid: str
    source_uri: str
    destination_monitor_uri: str | None
    destination_uri: str
    flags: list[str]
    params: dict[str, Any]
    schedule: dict


def domain_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Refused(f"{value!r} is not a domain UUID") from None


def check_params(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise Refused("the plan's params are not an object")
    unknown = sorted(set(params) - set(PLAN_PARAMS))
    if unknown:
        raise Refused(f"the plan carries parameters no plan of Ferry's has: {', '.join(map(str, unknown))}")
    out: dict[str, Any] = {}
    for key, value in params.items():
        try:
            if key == "migrate_uri":
                out[key] = check_migrate_uri(value)
            elif key == "tls.destination":
                out[key] = check_host_name(value) if isinstance(value, str) else _bad(key, value)
            elif key == "parallel.connections":
                out[key] = _whole(key, value, 2, MAX_CONNECTIONS)
            elif key == "bandwidth":
                out[key] = _whole(key, value, 1, 2**40)
        except UnsafeURI as error:
            raise Refused(f"{key} refused: {error}") from None
    return out


def _whole(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _bad(key, value)
    return value


def _bad(key: str, value: Any) -> Any:
    raise Refused(f"{key}={value!r} refused")


def check_flags(flags: Any) -> list[str]:
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise Refused("the plan's flags are not a list of names")
    unknown = sorted(set(flags) - PLAN_FLAGS)
    if unknown:
        raise Refused(f"the plan carries flags no plan of Ferry's has: {', '.join(unknown)}")
    return list(flags)


def check_order(job: Any, uris: UriPolicy) -> Order:
    """The claim's job as Ferry sent it, every value checked; Refused says what is wrong."""
    if not isinstance(job, dict) or not isinstance(job.get("plan"), dict):
        raise Refused("the claimed job carries no plan")
    plan = job["plan"]
    libvirt = plan.get("libvirt")
    if not isinstance(libvirt, dict):
        raise Refused("the plan has no libvirt section")
    schedule = plan.get("convergence_schedule") or {}
    if not isinstance(schedule, dict):
        raise Refused("the plan's convergence schedule is not an object")
    monitor = job.get("destination_monitor_uri")
    return Order(
        job_id=str(job.get("id")),
        vm_uuid=domain_uuid(job.get("vm_uuid")),
        source_uri=uris.libvirt(job.get("source_uri")),
        destination_monitor_uri=None if monitor is None else uris.libvirt(monitor),
        destination_uri=uris.libvirt(libvirt.get("destination_uri")),
        flags=check_flags(libvirt.get("flags")),
        params=check_params(libvirt.get("params", {})),
        schedule=schedule,
    )
