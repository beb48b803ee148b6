"""Ferry's own Celery tasks (the scheduler's), and the helpers that send host tasks to agents.

The host tasks (ferry.migrate, ferry.refresh_capabilities, ferry.sync_inventory,
ferry.reconcile_job) are not defined here: they run in each host's agent (ferry_agent.tasks),
which reaches Ferry's state only through the agent API. Ferry sends them by name, with the host
id first, to the host's queue (migrations_app.routing). No task has a Celery time limit: a
migration may run for hours; the agent's libvirt layer bounds each call itself.
"""

import logging

from celery import shared_task

from ferry_agent import logs
from migrations_app.routing import host_queue

logger = logging.getLogger(__name__)

MIGRATE = "ferry.migrate"
REFRESH_CAPABILITIES = "ferry.refresh_capabilities"
SYNC_INVENTORY = "ferry.sync_inventory"
RECONCILE_JOB = "ferry.reconcile_job"


def send_host_task(name: str, host_id, *args: str, app=None) -> None:
    """A host task, by name, with the host id first, on the host's queue.

    Published to the queue's own exchange (named like it), never to the broker's default one:
    an agent's retry goes back the way its message came, and on RabbitMQ the agent's user may
    write only to `host.<id>` (manage.py agent_broker_user), not to the default exchange, which
    reaches every queue."""
    if app is None:
        from config.celery import app
    queue = host_queue(host_id)
    app.send_task(name, args=[str(host_id), *args], queue=queue, exchange=queue, routing_key=queue)


@shared_task(name="ferry.monitor_hosts")
def monitor_hosts() -> int:
    """Scheduled: every host reports its capabilities and inventory on its own queue."""
    from clusters.models import Host

    hosts = list(Host.objects.exclude(status="maintenance").values_list("pk", flat=True))
    for host_id in hosts:
        send_host_task(REFRESH_CAPABILITIES, host_id)
        send_host_task(SYNC_INVENTORY, host_id)
    return len(hosts)


@shared_task(name="ferry.reconcile")
def reconcile() -> int:
    """Scheduled: jobs left queued or running too long are ended from libvirt's real state by their
    source host's agent; jobs whose agent never answers are failed after twice that time."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from migrations_app.agent_services import job_expire, stale_jobs

    now = timezone.now()
    lost_before = now - 2 * timedelta(seconds=settings.FERRY_RECONCILE_AFTER_S)
    count = 0
    for job in stale_jobs(now=now):
        count += 1
        with logs.bound(job_id=str(job.pk)):
            if job.created_at < lost_before or not job.source_host_id:
                logger.warning("reconciler: migration %s has had no answer from its agent: failing it", job.pk)
                job_expire(job_id=str(job.pk))
            else:
                logger.info("reconciler: asking %s's agent to end migration %s", job.source_host, job.pk)
                send_host_task(RECONCILE_JOB, job.source_host_id, str(job.pk))
    return count


def enqueue_migration(job) -> None:
    send_host_task(MIGRATE, job.source_host_id, str(job.pk))


def enqueue_refresh_capabilities(host) -> None:
    send_host_task(REFRESH_CAPABILITIES, host.pk)
    send_host_task(SYNC_INVENTORY, host.pk)
