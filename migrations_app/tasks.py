"""Ferry's own Celery tasks, the scheduler's: every host reports, and the reconciler.

The host tasks (ferry.migrate, ferry.refresh_capabilities, ferry.sync_inventory,
ferry.reconcile_job) are not defined here: they run in each host's agent (ferry_agent.tasks),
which reaches Ferry's state only through the agent API. Ferry sends them by name, with the host
id first, to the host's queue (migrations_app.host_tasks, re-exported here). No task has a Celery time limit: a
migration may run for hours; the agent's libvirt layer bounds each call itself.
"""

import logging

from celery import shared_task

from ferry_common import logs
from migrations_app.host_tasks import (
    MIGRATE,
    RECONCILE_JOB,
    REFRESH_CAPABILITIES,
    SYNC_INVENTORY,
    enqueue_refresh_capabilities,
    request_reconcile,
    send_host_task,
)

__all__ = [
    "MIGRATE",
    "RECONCILE_JOB",
    "REFRESH_CAPABILITIES",
    "SYNC_INVENTORY",
    "enqueue_refresh_capabilities",
    "monitor_hosts",
    "reconcile",
    "request_reconcile",
    "send_host_task",
]

logger = logging.getLogger(__name__)


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
