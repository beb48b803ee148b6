"""Sending host tasks to agents: by name, with the host id first, to the host's queue (core.routing).

The tasks themselves run in each host's agent (ferry_agent.tasks); Ferry only sends them. Below
every module that sends one (dispatch, services, evacuations, the scheduler's tasks).
"""

import logging

from core.routing import host_queue

logger = logging.getLogger(__name__)

MIGRATE = "ferry.migrate"
REFRESH_CAPABILITIES = "ferry.refresh_capabilities"
SYNC_INVENTORY = "ferry.sync_inventory"
RECONCILE_JOB = "ferry.reconcile_job"


def send_host_task(name: str, host_id, *args: str, app=None, retry_policy: dict | None = None) -> None:
    """A host task, by name, with the host id first, on the host's queue.

    Published to the queue's own exchange (named like it), never to the broker's default one:
    an agent's retry goes back the way its message came, and on RabbitMQ the agent's user may
    write only to `host.<id>` (manage.py agent_broker_user), not to the default exchange, which
    reaches every queue."""
    if app is None:
        from core.celery import app
    queue = host_queue(host_id)
    options: dict = {"retry": True, "retry_policy": retry_policy} if retry_policy is not None else {}
    app.send_task(name, args=[str(host_id), *args], queue=queue, exchange=queue, routing_key=queue, **options)


def request_reconcile(job, *, now=None) -> None:
    """Ask the source host's agent to end (or follow again) a running job, at most once a timeout."""
    from django.utils import timezone

    from migrations_app.models import MigrationJob

    now = now or timezone.now()
    logger.info("reconciler: asking %s's agent about migration %s (no report since %s)", job.source_host_id,
                job.pk, job.heartbeat_at)  # fmt: skip
    MigrationJob.objects.filter(pk=job.pk).update(reconcile_sent_at=now)
    try:
        send_host_task(RECONCILE_JOB, job.source_host_id, str(job.pk))
    except Exception as error:  # the broker is down: the next round asks again
        logger.warning("reconciler: could not ask about migration %s: %s", job.pk, error)
        MigrationJob.objects.filter(pk=job.pk).update(reconcile_sent_at=None)


def enqueue_refresh_capabilities(host) -> None:
    send_host_task(REFRESH_CAPABILITIES, host.pk)
    send_host_task(SYNC_INVENTORY, host.pk)
