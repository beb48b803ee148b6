"""The worker `make run` starts next to Ferry: Ferry's Celery app plus the host tasks.

With FERRY_HOST_QUEUES=false (make run's default) every host's tasks go to Ferry's default queue,
and this worker acts as the agent of every host on this machine: the same ferry_agent.runner
code, reaching Ferry's state in-process through LocalClient instead of HTTP, with Ferry's own
URI allow-list. A hypervisor never runs this module: it runs `ferry-agent`, which has no Django.

Use: `celery -A ferry_agent.embedded worker ...` (core/management/commands/run_ferry.py).
"""

from __future__ import annotations

from django.conf import settings

from config.celery import app  # sets DJANGO_SETTINGS_MODULE when it is not set
from ferry_agent import tasks
from ferry_agent.checks import UriPolicy
from ferry_agent.client import LocalClient
from ferry_agent.runner import Agent

__all__ = ["app", "local_agent"]


def uri_policy() -> UriPolicy:
    """Ferry's own allow-list, the one its forms and API check a host's URIs against."""
    return UriPolicy(
        allow_tcp=bool(getattr(settings, "FERRY_LIBVIRT_ALLOW_TCP", False)),
        socket_dirs=tuple(getattr(settings, "FERRY_LIBVIRT_SOCKET_DIRS", ())),
    )


def local_agent(host_id: str) -> Agent:
    """The agent of any host Ferry knows, acting in-process (LocalClient refuses unknown hosts)."""
    return Agent(
        host_id=host_id,
        client=LocalClient(host_id),
        uris=uri_policy(),
        migration_timeout_s=float(settings.FERRY_MIGRATION_TIMEOUT_S) or None,
        migration_pulse_s=float(settings.FERRY_MIGRATION_PULSE_S),
        migration_stall_s=float(settings.FERRY_MIGRATION_STALL_S) or None,
        max_bandwidth_mib_s=int(settings.FERRY_HOST_MAX_BANDWIDTH_MIB_S),
    )


tasks.register(app, local_agent)
