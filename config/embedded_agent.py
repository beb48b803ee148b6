"""The worker `make run` starts next to Ferry: Ferry's Celery app plus the host tasks.

With FERRY_HOST_QUEUES=false (make run's default) every host's tasks go to Ferry's default queue,
and this worker acts as the agent of every host on this machine: the same ferry_agent.runner
code, reaching Ferry's state in-process through LocalClient instead of HTTP, with Ferry's own
URI allow-list. A hypervisor never runs this module: it runs `ferry-agent`, which has no Django.

Use: `celery -A config.embedded_agent worker ...` (config/management/commands/run_ferry.py).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from config.celery import app  # sets DJANGO_SETTINGS_MODULE when it is not set
from ferry_agent import tasks
from ferry_agent.checks import UriPolicy
from ferry_agent.client import BadRequest, Refused
from ferry_agent.runner import Agent

__all__ = ["LocalClient", "app", "local_agent"]


class LocalClient:
    """The same calls in-process, for the worker `make run` starts next to Ferry.

    Payloads and answers pass through JSON exactly as over HTTP, so the agent's code sees the
    same values either way. It lives in the composition root: nothing on a hypervisor's code path
    reaches it.
    """

    def __init__(self, host_id: str):
        self.host_id = str(host_id)

    def __repr__(self) -> str:
        return f"LocalClient({self.host_id!r})"

    def host_info(self) -> dict:
        return self._call("host_info")

    def report_capabilities(self, payload: dict) -> dict:
        return self._call("report_capabilities", payload)

    def report_inventory(self, payload: dict) -> dict:
        return self._call("report_inventory", payload)

    def job_claim(self, job_id: str) -> dict:
        return self._call("job_claim", str(job_id))

    def job_progress(self, job_id: str, payload: dict) -> dict:
        return self._call("job_progress", str(job_id), payload)

    def job_finish(self, job_id: str, payload: dict) -> dict:
        return self._call("job_finish", str(job_id), payload)

    def job_get(self, job_id: str) -> dict:
        return self._call("job_get", str(job_id))

    def job_reconcile(self, job_id: str, payload: dict) -> dict:
        return self._call("job_reconcile", str(job_id), payload)

    def _call(self, name: str, *args: Any) -> dict:
        # Models only once Django is set up: Celery imports this module before it does that.
        from clusters.models import Host
        from migrations_app import agent_services

        try:
            host = Host.objects.filter(pk=self.host_id).first()
        except (ValidationError, ValueError):
            host = None
        if host is None:
            raise Refused(f"{name}: no host {self.host_id}", 403)
        args = json.loads(json.dumps(args))
        try:
            answer = getattr(agent_services, name)(host, *args)
        except agent_services.AgentForbidden as error:
            raise Refused(f"{name}: {error}", 403) from None
        except agent_services.AgentBadRequest as error:
            raise BadRequest(f"{name}: {error}", 400) from None
        return json.loads(json.dumps(answer))


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
