"""Ferry's own Celery tasks (the scheduler's), and the helpers that send host tasks to agents.

The host tasks (ferry.migrate, ferry.refresh_capabilities, ferry.sync_inventory,
ferry.reconcile_job) are not defined here: they run in each host's agent (ferry_agent.tasks),
which reaches Ferry's state only through the agent API. Ferry sends them by name, with the host
id first, to the host's queue (migrations_app.routing). No task has a Celery time limit: a
migration may run for hours; the agent's libvirt layer bounds each call itself.
"""

import logging

from celery import shared_task

from ferry_common import logs
from migrations_app.routing import host_queue

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
    """Scheduled: send the jobs that can start (migrations_app.dispatch), and watch running jobs by
    their heartbeats. A running job whose agent has not reported for FERRY_HEARTBEAT_TIMEOUT_S is
    handed to that agent's reconcile task (it follows libvirt's job if it still runs, else ends
    ours from the domain's real state); one silent for FERRY_AGENT_LOST_S is failed as
    agent_lost. Queue time never counts. Returns how many running jobs were acted on."""
    from django.utils import timezone

    from migrations_app.agent_services import job_expire, silent_jobs
    from migrations_app.dispatch import dispatch_ready

    now = timezone.now()
    dispatch_ready(now=now)
    count = 0
    for job, lost in silent_jobs(now=now):
        count += 1
        with logs.bound(job_id=str(job.pk)):
            if lost or not job.source_host_id:
                logger.warning("reconciler: migration %s has had no report from its agent: failing it", job.pk)
                job_expire(job_id=str(job.pk))
            else:
                request_reconcile(job, now=now)
    return count


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
