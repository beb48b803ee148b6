"""The host tasks of docs/agent-api.md, registered on a Celery app by name.

Ferry sends them by name with the host id first ([host_id] or [host_id, job_id]). A task whose
host is not one this worker acts for is refused: logged and dropped, never run. The tasks are an
interface only: they find the host's Agent and call ferry_agent.runner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery

from ferry_agent import runner

log = logging.getLogger(__name__)

__all__ = ["MIGRATE", "RECONCILE_JOB", "REFRESH_CAPABILITIES", "REFUSED", "SYNC_INVENTORY", "register"]

MIGRATE = "ferry.migrate"
REFRESH_CAPABILITIES = "ferry.refresh_capabilities"
SYNC_INVENTORY = "ferry.sync_inventory"
RECONCILE_JOB = "ferry.reconcile_job"
REFUSED = "refused"


def register(app: Celery, agent_for: Callable[[str], runner.Agent | None]) -> None:
    """Define the four host tasks on app. agent_for(host_id) is the Agent acting for that host,
    or None when this worker does not act for it (the task is then refused)."""

    def acting(task: str, host_id: str) -> runner.Agent | None:
        agent = agent_for(str(host_id))
        if agent is None:
            log.error("%s for host %s refused: this worker does not act for that host", task, host_id)
        return agent

    # No task has a time limit: a migration may run for hours; the libvirt layer bounds each call.
    # The message is acknowledged when it is received (acks_late off): the claim in Ferry is the
    # durable record, so neither RabbitMQ's consumer timeout nor Redis's visibility timeout can
    # cut or repeat a migration of hours. A message lost before its claim is sent again by Ferry
    # (migrations_app.dispatch); a busy claim goes back to Ferry's outbox, not round the broker.
    @app.task(name=MIGRATE, acks_late=False)
    def migrate(host_id: str, job_id: str) -> str:
        agent = acting(MIGRATE, host_id)
        if agent is None:
            return REFUSED
        return runner.migrate(agent, job_id)

    @app.task(name=REFRESH_CAPABILITIES)
    def refresh_capabilities(host_id: str) -> dict | str:
        agent = acting(REFRESH_CAPABILITIES, host_id)
        return REFUSED if agent is None else runner.refresh_capabilities(agent)

    @app.task(name=SYNC_INVENTORY)
    def sync_inventory(host_id: str) -> dict | str:
        agent = acting(SYNC_INVENTORY, host_id)
        return REFUSED if agent is None else runner.sync_inventory(agent)

    @app.task(name=RECONCILE_JOB)
    def reconcile_job(host_id: str, job_id: str) -> str:
        agent = acting(RECONCILE_JOB, host_id)
        return REFUSED if agent is None else runner.reconcile(agent, job_id)
