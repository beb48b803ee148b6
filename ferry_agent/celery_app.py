"""The agent's Celery application: no Django, configured only from CELERY_BROKER_URL.

JSON messages only (a pickled message could run code here), no results, no remote control or
events (the agent needs nothing from the broker but its own queue), and it serves exactly one
queue: `host.<id>` of its own host.
"""

from __future__ import annotations

from celery import Celery

from ferry_agent import runner, tasks
from ferry_common import logs

__all__ = ["host_queue", "make_app"]


def host_queue(host_id: str) -> str:
    return f"host.{host_id}"


def make_app(broker_url: str, *, queue: str) -> Celery:
    logs.connect_celery(service="agent")
    # fixups=[]: never Celery's Django fix-up, even if DJANGO_SETTINGS_MODULE happens to be set.
    app = Celery("ferry-agent", broker=broker_url, fixups=[], set_as_current=True)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_time_limit=None,
        task_soft_time_limit=None,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        task_queues=None,
    )
    return app


def agent_app(broker_url: str, agent: runner.Agent) -> Celery:
    """The app of one host's agent: the host tasks, refused for any host but its own."""
    app = make_app(broker_url, queue=host_queue(agent.host_id))

    def own(host_id: str) -> runner.Agent | None:
        return agent if host_id == agent.host_id else None

    tasks.register(app, own)
    return app
