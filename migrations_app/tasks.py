"""Celery tasks: thin interfaces that load ids and call the host agent's services.

Host tasks go to the host's own queue (migrations_app.routing), so a worker on each hypervisor
serves only its host. No task has a Celery time limit: a migration may run for hours; the libvirt
layer bounds each call itself.
"""

import logging

from celery import shared_task

from ferry_agent import logs
from migrations_app.routing import host_queue

logger = logging.getLogger(__name__)

RETRY_BUSY_S = 2


@shared_task(name="ferry.migrate", bind=True, acks_late=True, max_retries=None)
def migrate(self, job_id: str) -> str:
    from migrations_app.agent import Claim, migration_run

    claim = migration_run(job_id=job_id)
    if claim is Claim.BUSY:
        raise self.retry(countdown=RETRY_BUSY_S)
    return claim.value


@shared_task(name="ferry.refresh_capabilities")
def refresh_capabilities(host_id: str) -> None:
    from migrations_app.agent import capabilities_refresh

    capabilities_refresh(host_id=host_id)


@shared_task(name="ferry.sync_inventory")
def sync_inventory(host_id: str) -> dict:
    from migrations_app.agent import inventory_sync

    return inventory_sync(host_id=host_id)


@shared_task(name="ferry.reconcile_job")
def reconcile_job(job_id: str) -> None:
    from migrations_app.agent import job_reconcile

    job_reconcile(job_id=job_id)


@shared_task(name="ferry.monitor_hosts")
def monitor_hosts() -> int:
    """Scheduled: every host reports its capabilities and inventory on its own queue."""
    from clusters.models import Host

    hosts = list(Host.objects.exclude(status="maintenance").values_list("pk", flat=True))
    for host_id in hosts:
        refresh_capabilities.apply_async(args=[str(host_id)], queue=host_queue(host_id))
        sync_inventory.apply_async(args=[str(host_id)], queue=host_queue(host_id))
    return len(hosts)


@shared_task(name="ferry.reconcile")
def reconcile() -> int:
    """Scheduled: jobs left queued or running too long are ended from libvirt's real state by their
    source host's agent; jobs whose agent never answers are failed after twice that time."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from migrations_app.agent import job_expire, stale_jobs

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
                reconcile_job.apply_async(args=[str(job.pk)], queue=host_queue(job.source_host_id))
    return count


def enqueue_migration(job) -> None:
    migrate.apply_async(args=[str(job.pk)], queue=host_queue(job.source_host_id))


def enqueue_refresh_capabilities(host) -> None:
    refresh_capabilities.apply_async(args=[str(host.pk)], queue=host_queue(host.pk))
    sync_inventory.apply_async(args=[str(host.pk)], queue=host_queue(host.pk))
