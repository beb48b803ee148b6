"""A migration to a host Ferry chose that fails is run once more on the next host it chooses, as
oVirt's engine reruns a migration; one sent to a named host, a cancelled one and a rerun are not."""

import pytest

from clusters.models import VM
from core.audit import Actor
from core.models import AuditEntry
from core.routing import host_queue
from migrations_app.agent_services import Claim, migration_claim, migration_finish
from migrations_app.models import JobState, MigrationJob
from migrations_app.selectors import vm_for_planning
from migrations_app.services import migration_cancel, migration_start
from tests import broker
from tests.agent.test_evacuation import make_host
from tests.factories import ClusterFactory, VMFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.task("test")
FAILED = {"code": "migration_failed", "message": "the destination refused"}


@pytest.fixture
def estate():
    cluster = ClusterFactory()
    # kvm-b has the most free memory, so Ferry chooses it first; kvm-c is next.
    hosts = [make_host(cluster, name="kvm-a"), make_host(cluster, name="kvm-b", memory_gib=512)]
    hosts.append(make_host(cluster, name="kvm-c"))
    for each in hosts:
        broker.purge(host_queue(each.pk))
    yield hosts
    for each in hosts:
        broker.purge(host_queue(each.pk))


def start(vm, destination=None):
    return migration_start(actor=ACTOR, vm=vm_for_planning(vm.pk), destination=destination)


def fail(job, on_commit):
    assert migration_claim(job_id=str(job.pk)) is Claim.STARTED
    with on_commit(execute=True):
        migration_finish(job_id=str(job.pk), state=JobState.FAILED, error=FAILED, stats={})


def test_an_automatic_choice_is_explained_in_the_plan(estate):
    _source, chosen, _other = estate
    job = start(VMFactory(host=estate[0], name="guest"))
    assert job.automatic and job.destination_host == chosen
    decision = job.plan["decisions"][0]
    assert decision["code"] == "destination_chosen"
    assert decision["message"].startswith(f"Ferry chose kvm-b with {512 * 1024} MiB free")


def test_a_failed_automatic_migration_is_rerun_once_on_the_next_host(estate, django_capture_on_commit_callbacks):
    source, first, second = estate
    vm = VMFactory(host=source, name="guest")
    job = start(vm)
    assert job.destination_host == first
    fail(job, django_capture_on_commit_callbacks)
    rerun = MigrationJob.objects.get(vm=vm, state=JobState.QUEUED)
    assert (rerun.rerun_of, rerun.destination_host, rerun.automatic) == (job, second, True)
    assert str(rerun.pk) in [m.args[1] for m in broker.take(host_queue(source.pk), wait_s=0.5)]
    entry = AuditEntry.objects.get(action="rerun", object_id=str(job.pk))
    assert entry.after == {"rerun": str(rerun.pk)}
    fail(rerun, django_capture_on_commit_callbacks)
    assert not MigrationJob.objects.filter(vm=vm, state__in=("queued", "running")).exists()
    assert VM.objects.get(pk=vm.pk).host_id == source.pk


def test_without_another_host_the_failure_stands_and_the_audit_says_why(estate, django_capture_on_commit_callbacks):
    source, _first, second = estate
    second.status = "maintenance"
    second.save()
    vm = VMFactory(host=source, name="guest")
    job = start(vm)
    fail(job, django_capture_on_commit_callbacks)
    assert not MigrationJob.objects.filter(vm=vm, state=JobState.QUEUED).exists()
    entry = AuditEntry.objects.get(action="rerun", object_id=str(job.pk))
    assert entry.after["rerun"] is None and "kvm-c is maintenance" in entry.after["reason"]


def test_a_named_destination_is_never_rerun(estate, django_capture_on_commit_callbacks):
    source, first, _second = estate
    vm = VMFactory(host=source, name="guest")
    job = start(vm, destination=first)
    assert not job.automatic
    fail(job, django_capture_on_commit_callbacks)
    assert MigrationJob.objects.filter(vm=vm).count() == 1
    assert not AuditEntry.objects.filter(action="rerun").exists()


def test_a_cancelled_automatic_migration_is_not_rerun(estate, django_capture_on_commit_callbacks):
    source, _first, _second = estate
    vm = VMFactory(host=source, name="guest")
    job = start(vm)
    assert migration_claim(job_id=str(job.pk)) is Claim.STARTED
    migration_cancel(actor=ACTOR, job=job)
    with django_capture_on_commit_callbacks(execute=True):
        migration_finish(job_id=str(job.pk), state=JobState.CANCELLED, error=None, stats={})
    assert MigrationJob.objects.filter(vm=vm).count() == 1


def test_the_job_pages_link_the_failed_job_and_its_rerun(admin_client, estate, django_capture_on_commit_callbacks):
    source, _first, second = estate
    job = start(VMFactory(host=source, name="guest"))
    fail(job, django_capture_on_commit_callbacks)
    rerun = MigrationJob.objects.get(rerun_of=job)
    page = admin_client.get(f"/migrations/{job.pk}/").content.decode()
    assert "chosen by Ferry" in page and f'href="/migrations/{rerun.pk}/" id="rerun-link">{second.name}' in page
    page = admin_client.get(f"/migrations/{rerun.pk}/").content.decode()
    assert f'href="/migrations/{job.pk}/">the failed migration' in page


def test_a_job_failed_because_its_agent_was_lost_is_not_rerun(estate, django_capture_on_commit_callbacks):
    from migrations_app.agent_services import job_expire

    vm = VMFactory(host=estate[0], name="guest")
    job = start(vm)
    assert migration_claim(job_id=str(job.pk)) is Claim.STARTED
    with django_capture_on_commit_callbacks(execute=True):
        job_expire(job_id=str(job.pk))
    assert MigrationJob.objects.filter(vm=vm).count() == 1  # the VM's real state is unknown
