"""Sending migration jobs to their hosts' agents: an outbox in the jobs table.

A job and its sending are one durable step: migration_start stores the job (queued, not yet
sent) and, once committed, hands its task to the broker and marks it sent (dispatched_at). When
the broker does not answer, the job stays queued and unsent, the API and the job page say so,
and the scheduler (ferry.reconcile, every FERRY_RECONCILE_INTERVAL_S) sends it when the broker
answers again: a migration is never refused, and never lost, because the broker is down.

Only jobs that can start are sent: a job waits in the table, not in the broker, while its
source or destination runs as many migrations as the plan allows. A finished job sends the next
waiting ones of its hosts at once (fair_order: the jobs of one evacuation by their VM's priority,
then by age). A claim the agent finds busy anyway (a race) clears the mark,
and the job is sent again when a slot frees.

A sent job that stays queued for FERRY_REDISPATCH_S while its agent keeps reporting lost its
message (an agent that died between taking the message and claiming the job): it is sent again.
The agent acknowledges a migrate message when it receives it, so neither RabbitMQ's consumer
timeout nor Redis's visibility timeout touches a migration of hours: once claimed, a job is
watched through its heartbeats (migrations_app.tasks.reconcile), not through its message.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ferry_common import logs
from migrations_app.models import JobState, MigrationJob

logger = logging.getLogger(__name__)

#: How hard the web process tries the broker before leaving a job to the scheduler.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


def send(job: MigrationJob, *, app: Any = None) -> bool:
    """Hand one queued job's task to the broker and mark it sent; False when the broker refused."""
    from migrations_app.host_tasks import MIGRATE, send_host_task

    with logs.bound(job_id=str(job.pk)):
        try:
            send_host_task(MIGRATE, job.source_host_id, str(job.pk), app=app, retry_policy=PUBLISH_RETRY)
        except Exception as error:  # the broker is down or refuses: the job waits in the outbox
            logger.warning("migration %s not sent yet, the broker did not take it: %s", job.pk, error)
            return False
        MigrationJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(dispatched_at=timezone.now())
        logger.info("migration %s sent to host.%s", job.pk, job.source_host_id)
    return True


def _busy_counts() -> tuple[Counter, Counter]:
    """Migrations running or already sent, per source host and per destination host."""
    taken = MigrationJob.objects.filter(
        Q(state=JobState.RUNNING) | Q(state=JobState.QUEUED, dispatched_at__isnull=False)
    ).values_list("source_host_id", "destination_host_id")
    outgoing: Counter = Counter()
    incoming: Counter = Counter()
    for source, destination in taken:
        outgoing[source] += 1
        incoming[destination] += 1
    return outgoing, incoming


def blocking_host(job: MigrationJob) -> str | None:
    """Why a queued, unsent job waits: "source" or "destination" at the plan's limit, else None."""
    outgoing, incoming = _busy_counts()
    if outgoing[job.source_host_id] >= job.plan.get("outgoing_limit", 1):
        return "source"
    if incoming[job.destination_host_id] >= job.plan.get("incoming_limit", 1):
        return "destination"
    return None


def dispatch_ready(*, host_ids: set | None = None, now=None, app: Any = None) -> int:
    """Send every queued, unsent job that can start now (in fair_order), within the plans' per-host
    limits; first re-arm sent jobs whose message was lost. Returns how many were sent."""
    now = now or timezone.now()
    _rearm_lost(now)
    waiting = MigrationJob.objects.filter(state=JobState.QUEUED, dispatched_at__isnull=True, source_host__isnull=False)
    if host_ids:
        waiting = waiting.filter(Q(source_host_id__in=host_ids) | Q(destination_host_id__in=host_ids))
    jobs = fair_order(
        waiting.annotate(vm_priority=F("vm__priority"))
        .order_by("created_at", "pk")
        .only("pk", "source_host_id", "destination_host_id", "plan", "evacuation_id", "created_at")
    )
    if not jobs:
        return 0
    outgoing, incoming = _busy_counts()
    sent = 0
    for job in jobs:
        if outgoing[job.source_host_id] >= job.plan.get("outgoing_limit", 1):
            continue
        if incoming[job.destination_host_id] >= job.plan.get("incoming_limit", 1):
            continue
        if not send(job, app=app):
            break  # the broker is down: the next round tries again
        outgoing[job.source_host_id] += 1
        incoming[job.destination_host_id] += 1
        sent += 1
    return sent


def fair_order(jobs) -> list[MigrationJob]:
    """Waiting jobs in the order they may start: oldest first, except that the jobs of one
    evacuation go by their VM's priority (high first), then by age, in the place of the
    evacuation's oldest waiting job. `jobs`: annotated with vm_priority, oldest first."""
    jobs = list(jobs)
    first: dict[Any, int] = {}
    for index, job in enumerate(jobs):
        if job.evacuation_id is not None:
            first.setdefault(job.evacuation_id, index)

    def key(item: tuple[int, MigrationJob]) -> tuple[int, int, int]:
        index, job = item
        if job.evacuation_id is None:
            return (index, 0, index)
        return (first[job.evacuation_id], -(getattr(job, "vm_priority", 0) or 0), index)

    return [job for _index, job in sorted(enumerate(jobs), key=key)]


def _rearm_lost(now) -> int:
    """Sent jobs still queued long after, while their agent reports: their message was lost."""
    limit = now - timedelta(seconds=settings.FERRY_REDISPATCH_S)
    lost = MigrationJob.objects.filter(
        state=JobState.QUEUED,
        dispatched_at__lt=limit,
        source_host__capabilities_updated_at__gt=F("dispatched_at"),
    )
    count = lost.update(dispatched_at=None)
    if count:
        logger.warning("%d migration(s) sent but never claimed while their agent reports: sending again", count)
    return count


def release(job_id) -> None:
    """A claim found the hosts busy after all: the job goes back to the outbox."""
    MigrationJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(dispatched_at=None)
