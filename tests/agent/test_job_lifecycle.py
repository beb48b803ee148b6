"""The job lifecycle without libvirt: claims, limits, outcomes, cancel, and the reconciler.

What needs a real hypervisor (the migration itself) is in tests/e2e on the lab.
"""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from core.models import AuditEntry
from migrations_app import agent_services
from migrations_app.agent_services import Claim, decide_outcome, migration_claim, migration_finish
from migrations_app.models import JobState, MigrationJob
from migrations_app.selectors import migration_plan
from migrations_app.services import MigrationConflict, migration_cancel, migration_start
from migrations_app.tasks import reconcile
from tests.factories import ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    cluster = ClusterFactory()
    source, destination = HostFactory(cluster=cluster), HostFactory(cluster=cluster)
    return source, destination


def queued_job(vm, destination):
    return MigrationJob.objects.create(
        vm=vm,
        source_host=vm.host,
        destination_host=destination,
        plan=migration_plan(vm=vm, destination=destination).to_dict(),
    )


def test_a_job_is_claimed_at_most_once(pair):
    source, destination = pair
    job = queued_job(VMFactory(host=source), destination)
    assert migration_claim(job_id=job.pk) is Claim.STARTED
    assert migration_claim(job_id=job.pk) is Claim.NOT_QUEUED
    job.refresh_from_db()
    assert job.state == "running" and job.started_at is not None
    assert job.vm.__class__.objects.get(pk=job.vm_id).status == "migrating"
    assert AuditEntry.objects.filter(object_id=str(job.pk), action="start", actor="ferry.migrate").count() == 1


def test_a_duplicate_that_waited_behind_the_winning_claim_sees_the_job_taken_not_its_hosts_busy(pair, monkeypatch):
    """The interleaving PostgreSQL allows: the duplicate read the job while it was still queued,
    then waited for the hosts' locks while the other claim started it. With a limit of one, it
    must answer not_queued (a duplicate), not busy, which would report the hosts full."""
    source, destination = pair
    job = queued_job(VMFactory(host=source), destination)
    MigrationJob.objects.filter(pk=job.pk).update(plan={**job.plan, "outgoing_limit": 1, "incoming_limit": 1})
    stale = MigrationJob.objects.get(pk=job.pk)  # what the duplicate read before the winner committed
    assert migration_claim(job_id=job.pk) is Claim.STARTED  # the winner
    real_first = type(MigrationJob.objects.all()).first
    reads = []

    def first(queryset):
        reads.append(queryset.model)
        return stale if len(reads) == 1 and queryset.model is MigrationJob else real_first(queryset)

    monkeypatch.setattr(type(MigrationJob.objects.all()), "first", first)
    assert migration_claim(job_id=job.pk) is Claim.NOT_QUEUED
    assert reads and MigrationJob.objects.get(pk=job.pk).state == "running"


def test_a_second_job_waits_for_the_hosts_limit(pair):
    source, destination = pair
    first = queued_job(VMFactory(host=source), destination)
    second = queued_job(VMFactory(host=source), destination)
    assert first.plan["outgoing_limit"] == 2  # Minimal downtime, not parallel
    third = queued_job(VMFactory(host=source), destination)
    assert migration_claim(job_id=first.pk) is Claim.STARTED
    assert migration_claim(job_id=second.pk) is Claim.STARTED
    assert migration_claim(job_id=third.pk) is Claim.BUSY
    assert MigrationJob.objects.get(pk=third.pk).state == "queued"
    migration_finish(job_id=first.pk, state=JobState.FAILED, error={"code": "x", "message": "y"}, stats={})
    assert migration_claim(job_id=third.pk) is Claim.STARTED


def test_a_job_cancelled_before_it_started_is_never_claimed(pair, actor):
    source, destination = pair
    job = queued_job(VMFactory(host=source), destination)
    migration_cancel(actor=actor, job=job)
    assert MigrationJob.objects.get(pk=job.pk).state == "cancelled"
    assert migration_claim(job_id=job.pk) is Claim.NOT_QUEUED


def test_cancelling_a_running_job_asks_its_task(pair, actor):
    source, destination = pair
    job = queued_job(VMFactory(host=source), destination)
    migration_claim(job_id=job.pk)
    cancelled = migration_cancel(actor=actor, job=job)
    assert (cancelled.state, cancelled.cancel_requested) == ("running", True)
    assert agent_services.job_progress(source, str(job.pk), {"progress": 5, "stats": {}}) == {"cancel_requested": True}


def test_a_job_ends_once_and_the_vm_follows(pair):
    source, destination = pair
    vm = VMFactory(host=source)
    job = queued_job(vm, destination)
    migration_claim(job_id=job.pk)
    assert migration_finish(job_id=job.pk, state=JobState.SUCCEEDED, error=None, stats={"downtime_ms": 40})
    assert not migration_finish(job_id=job.pk, state=JobState.FAILED, error={"code": "late", "message": ""}, stats={})
    job.refresh_from_db()
    vm.refresh_from_db()
    assert (job.state, job.progress, job.stats["downtime_ms"]) == ("succeeded", 100, 40)
    assert (vm.host_id, vm.status) == (destination.pk, "up")
    assert AuditEntry.objects.filter(object_type="vm", object_id=str(vm.pk), actor="ferry.migrate").exists()


def test_progress_never_goes_backwards(pair):
    source, destination = pair
    job = queued_job(VMFactory(host=source), destination)
    migration_claim(job_id=job.pk)
    for value in (10, 40, 25, 99, 100):
        agent_services.job_progress(source, str(job.pk), {"progress": value, "stats": {"memory_remaining": value}})
    job.refresh_from_db()
    assert (job.progress, job.stats) == (99, {"memory_remaining": 100})  # 100 only when done


def test_the_database_allows_one_active_job_per_vm(pair):
    source, destination = pair
    vm = VMFactory(host=source)
    queued_job(vm, destination)
    with pytest.raises(IntegrityError), transaction.atomic():
        queued_job(vm, destination)


def test_starting_twice_is_a_conflict(pair, actor, django_capture_on_commit_callbacks):
    source, destination = pair
    vm = VMFactory(host=source)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        migration_start(actor=actor, vm=vm, destination=destination)
    assert len(callbacks) == 1  # the host task is enqueued only after commit
    with pytest.raises(MigrationConflict):
        migration_start(actor=actor, vm=vm, destination=destination)


@pytest.mark.parametrize(
    ("source", "destination", "result", "state", "code"),
    [
        ("up", None, {"ok": False, "error_message": "boom", "error_code": 38}, "failed", "migration_failed"),
        ("up", None, {"ok": False, "cancelled": True}, "cancelled", None),
        ("up", "up", {"ok": False, "timed_out": True}, "failed", "timeout"),
        ("up", None, {"ok": False, "aborted_by_schedule": True}, "failed", "aborted_by_schedule"),
        ("up", None, {"ok": True}, "failed", "migration_failed"),
        (None, "up", {"ok": True}, "succeeded", None),
        (None, "up", {"ok": False, "error_message": "late error"}, "succeeded", None),
        (None, None, {"ok": False, "error_message": "gone"}, "failed", "vm_not_found"),
        (None, "unreachable", {"ok": True}, "succeeded", None),
        ("unreachable", "unreachable", {"ok": False}, "failed", "migration_failed"),
        (None, "unreachable", {"ok": False}, "failed", "migration_failed"),
    ],
)
def test_the_outcome_comes_from_the_domains_real_state(source, destination, result, state, code):
    decided, error = decide_outcome(source_state=source, destination_state=destination, result=result)
    assert decided == state
    assert (error or {}).get("code") == code


@override_settings(FERRY_HEARTBEAT_TIMEOUT_S=60, FERRY_AGENT_LOST_S=300)
def test_the_reconciler_fails_running_jobs_whose_agent_never_answers(pair):
    source, destination = pair
    old = queued_job(VMFactory(host=source), destination)
    fresh = queued_job(VMFactory(host=source), destination)
    long_ago = timezone.now() - timedelta(minutes=10)
    MigrationJob.objects.filter(pk=old.pk).update(state="running", started_at=long_ago, heartbeat_at=long_ago)
    MigrationJob.objects.filter(pk=fresh.pk).update(created_at=long_ago)  # queued long: not a sign of anything
    assert reconcile() == 1
    old.refresh_from_db()
    assert (old.state, old.error["code"]) == ("failed", "agent_lost")
    assert MigrationJob.objects.get(pk=fresh.pk).state == "queued"
    assert AuditEntry.objects.filter(object_id=str(old.pk), actor="ferry.reconcile").exists()
