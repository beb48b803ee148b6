"""Maintenance that empties a host (issue 15), with the real SQLite database and the suite's broker.

- Maintenance makes the host preparing_for_maintenance and gives every VM running on it a job to
  the host Ferry chooses (up, with room, most free memory); only the jobs the plans' limits let
  start are sent, the next one when a job ends.
- The host reaches maintenance when its last VM has left (driven through the agent side's
  migration_claim/migration_finish), and at once when it has none.
- A VM that no host can take, or whose job failed, leaves the host preparing with the reason.
- Activating the host cancels the evacuation: queued jobs end, the host activates.
"""

import pytest
from django.db.models import F

from clusters.models import VM, Host, HostStatus, VMPriority
from clusters.services import host_activate, host_set_maintenance
from core.audit import Actor
from core.models import AuditEntry
from core.routing import host_queue
from migrations_app.agent_services import Claim, migration_claim, migration_finish
from migrations_app.evacuation import evacuation_progress
from migrations_app.models import Evacuation, JobState, MigrationJob
from migrations_app.selectors import destination_search
from policies.models import VERY_LARGE_VMS_ID
from tests import broker
from tests.factories import ZEROCOPY_HOST, ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db

GIB = 1024


def make_host(cluster, *, memory_gib=256, **fields):
    made = HostFactory(cluster=cluster, **fields)
    Host.objects.filter(pk=made.pk).update(
        capabilities=dict(ZEROCOPY_HOST, memory_mib=memory_gib * GIB, addresses=[made.address])
    )
    made.refresh_from_db()
    return made


@pytest.fixture
def estate():
    cluster = ClusterFactory()
    hosts = [make_host(cluster, name=f"kvm-{letter}") for letter in "abc"]
    for each in hosts:
        broker.purge(host_queue(each.pk))
    yield cluster, hosts
    for each in hosts:
        broker.purge(host_queue(each.pk))


def sent(host_) -> list[str]:
    return [message.args[1] for message in broker.take(host_queue(host_.pk), wait_s=0.5)]


def evacuate(host_, on_commit):
    with on_commit(execute=True):
        return host_set_maintenance(actor=Actor.task("test"), host=host_)


def finish(job, state=JobState.SUCCEEDED, on_commit=None, error=None):
    assert migration_claim(job_id=str(job.pk)) is Claim.STARTED
    with on_commit(execute=True):
        migration_finish(job_id=str(job.pk), state=state, error=error, stats={})


def test_destination_is_the_up_host_with_most_free_memory_and_room():
    cluster = ClusterFactory()
    source = make_host(cluster, name="src")
    small = make_host(cluster, name="small", memory_gib=64)
    big = make_host(cluster, name="big", memory_gib=128)
    make_host(cluster, name="down", memory_gib=1024, status=HostStatus.NON_OPERATIONAL)
    make_host(cluster, name="prep", memory_gib=1024, status=HostStatus.PREPARING_FOR_MAINTENANCE)
    VMFactory(host=big, memory_mib=100 * GIB)  # big has 28 GiB free, small 64 GiB
    vm = VMFactory(host=source, memory_mib=40 * GIB)
    chosen, passed = destination_search(vm)
    assert chosen == small
    assert any("down is non operational" in why for why in passed), passed
    assert any("prep is preparing for maintenance" in why for why in passed), passed
    vm_big = VMFactory(host=source, memory_mib=100 * GIB)
    chosen, passed = destination_search(vm_big)
    assert chosen is None
    assert any(why.startswith("small has 65536 MiB free") for why in passed), passed
    # A VM on its way to a host takes its memory there already.
    MigrationJob.objects.create(vm=vm, source_host=source, destination_host=small, plan={})
    assert destination_search(VMFactory(host=source, memory_mib=20 * GIB))[0] == big  # small: 24 GiB free


def test_evacuation_moves_every_vm_one_at_a_time_and_reaches_maintenance(
    estate, django_capture_on_commit_callbacks, settings
):
    cluster, (source, first, second) = estate
    cluster.migration_policy_id = VERY_LARGE_VMS_ID  # one migration per host
    cluster.save()
    vms = [VMFactory(host=source, memory_mib=8 * GIB) for _ in range(3)]
    VMFactory(host=source, status="down")  # a VM that does not run does not hold the host
    host_ = evacuate(source, django_capture_on_commit_callbacks)
    assert host_.status == HostStatus.PREPARING_FOR_MAINTENANCE
    jobs = list(MigrationJob.objects.filter(source_host=source).order_by("created_at"))
    assert sorted(job.vm_id for job in jobs) == sorted(vm.pk for vm in vms)
    assert {job.destination_host_id for job in jobs} <= {first.pk, second.pk}
    assert all(job.evacuation is not None for job in jobs)
    assert jobs[0].plan["outgoing_limit"] == 1
    sent_ids = sent(source)
    assert len(sent_ids) == 1  # one migration per host: the others wait in the table
    progress = evacuation_progress(source)
    assert (progress["vms"], progress["memory_mib"], progress["waiting"]) == (3, 24 * GIB, 3)
    by_id = {str(job.pk): job for job in jobs}
    for round_ in range(3):
        job = by_id[sent_ids[0]]
        finish(job, on_commit=django_capture_on_commit_callbacks)
        source.refresh_from_db()
        if round_ < 2:
            assert source.status == HostStatus.PREPARING_FOR_MAINTENANCE
            sent_ids = sent(source)
            assert len(sent_ids) == 1
    assert source.status == HostStatus.MAINTENANCE and source.status_reason == {}
    assert VM.objects.filter(host=source, status="up").count() == 0
    progress = evacuation_progress(source)
    assert (progress["moved"], progress["vms_left"], progress["outcome"]) == (3, 0, "done")
    assert AuditEntry.objects.filter(action="maintenance_reached", object_id=str(source.pk)).count() == 1


def test_a_host_without_vms_reaches_maintenance_at_once(estate, django_capture_on_commit_callbacks):
    _cluster, (source, _first, _second) = estate
    assert evacuate(source, django_capture_on_commit_callbacks).status == HostStatus.MAINTENANCE


def test_a_vm_no_host_can_take_leaves_the_host_preparing_with_the_reason(estate, django_capture_on_commit_callbacks):
    _cluster, (source, first, second) = estate
    Host.objects.filter(pk=second.pk).update(status=HostStatus.NON_OPERATIONAL)
    fits = VMFactory(host=source, name="fits", memory_mib=8 * GIB)
    huge = VMFactory(host=source, name="huge", memory_mib=600 * GIB)
    host_ = evacuate(source, django_capture_on_commit_callbacks)
    assert host_.status == HostStatus.PREPARING_FOR_MAINTENANCE
    assert not MigrationJob.objects.filter(vm=huge).exists()
    job = MigrationJob.objects.get(vm=fits)
    assert job.destination_host_id == first.pk
    message = host_.status_reason["message"]
    assert host_.status_reason["check"] == "evacuation"
    assert "huge: no host can take it" in message and "kvm-b has 262144 MiB free" in message, message
    finish(job, on_commit=django_capture_on_commit_callbacks)
    source.refresh_from_db()
    assert source.status == HostStatus.PREPARING_FOR_MAINTENANCE
    assert "huge" in source.status_reason["message"]
    assert VM.objects.get(pk=huge.pk).host_id == source.pk  # no VM is lost


def test_a_failed_job_is_rerun_once_on_the_next_host_and_counts_as_one_attempt(
    estate, django_capture_on_commit_callbacks
):
    _cluster, (source, first, second) = estate
    vm = VMFactory(host=source, name="guest")
    evacuate(source, django_capture_on_commit_callbacks)
    job = MigrationJob.objects.get(vm=vm)
    assert job.automatic and job.destination_host_id in (first.pk, second.pk)
    error = {"code": "migration_failed", "message": "the destination refused"}
    finish(job, state=JobState.FAILED, on_commit=django_capture_on_commit_callbacks, error=error)
    rerun = MigrationJob.objects.get(vm=vm, state=JobState.QUEUED)
    assert rerun.rerun_of_id == job.pk and rerun.evacuation_id == job.evacuation_id
    assert rerun.destination_host_id != job.destination_host_id and rerun.source_host_id == source.pk
    assert rerun.plan["decisions"][0]["code"] == "destination_chosen"
    assert f"after it failed to {job.destination_host.name}" in rerun.plan["decisions"][0]["message"]
    assert AuditEntry.objects.filter(action="rerun", object_id=str(job.pk)).exists()
    progress = evacuation_progress(source)
    assert (progress["failed"], progress["waiting"]) == (0, 1)  # the rerun is the VM's attempt
    source.refresh_from_db()
    assert source.status == HostStatus.PREPARING_FOR_MAINTENANCE
    finish(rerun, on_commit=django_capture_on_commit_callbacks)
    source.refresh_from_db()
    assert source.status == HostStatus.MAINTENANCE
    assert evacuation_progress(source)["moved"] == 1 and evacuation_progress(source)["failed"] == 0


def test_a_failed_rerun_leaves_the_host_preparing_and_asking_again_retries(estate, django_capture_on_commit_callbacks):
    _cluster, (source, _first, _second) = estate
    vm = VMFactory(host=source, name="guest")
    evacuate(source, django_capture_on_commit_callbacks)
    job = MigrationJob.objects.get(vm=vm)
    error = {"code": "migration_failed", "message": "the destination refused"}
    finish(job, state=JobState.FAILED, on_commit=django_capture_on_commit_callbacks, error=error)
    rerun = MigrationJob.objects.get(vm=vm, state=JobState.QUEUED)
    finish(rerun, state=JobState.FAILED, on_commit=django_capture_on_commit_callbacks, error=error)
    assert not MigrationJob.objects.filter(vm=vm, state=JobState.QUEUED).exists()  # a rerun is not rerun
    source.refresh_from_db()
    assert source.status == HostStatus.PREPARING_FOR_MAINTENANCE
    assert "guest: its migration failed (the destination refused)" in source.status_reason["message"]
    assert evacuation_progress(source)["failed"] == 1
    again = evacuate(source, django_capture_on_commit_callbacks)
    retry = MigrationJob.objects.get(vm=vm, state=JobState.QUEUED)
    assert retry.evacuation_id == job.evacuation_id  # the same evacuation goes on
    finish(retry, on_commit=django_capture_on_commit_callbacks)
    again.refresh_from_db()
    assert again.status == HostStatus.MAINTENANCE


def test_activating_cancels_the_evacuation(estate, django_capture_on_commit_callbacks):
    cluster, (source, _first, _second) = estate
    cluster.migration_policy_id = VERY_LARGE_VMS_ID  # one migration per host
    cluster.save()
    vms = [VMFactory(host=source) for _ in range(3)]
    evacuate(source, django_capture_on_commit_callbacks)
    running = MigrationJob.objects.get(pk=sent(source)[0])
    assert migration_claim(job_id=str(running.pk)) is Claim.STARTED
    with django_capture_on_commit_callbacks(execute=True):
        host_ = host_activate(actor=Actor.task("test"), host=source)
    assert host_.status == HostStatus.ACTIVATING
    states = sorted(MigrationJob.objects.filter(vm__in=vms).values_list("state", flat=True))
    assert states == ["cancelled", "cancelled", "running"]  # the running one finishes
    evacuation = Evacuation.objects.get(host=source)
    assert evacuation.outcome == "cancelled" and evacuation.ended_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        migration_finish(job_id=str(running.pk), state=JobState.SUCCEEDED, error=None, stats={})
    source.refresh_from_db()
    assert source.status == HostStatus.ACTIVATING  # no longer evacuating: it does not go to maintenance


def test_a_queued_migration_to_the_host_is_cancelled(estate, django_capture_on_commit_callbacks):
    _cluster, (source, first, _second) = estate
    incoming = MigrationJob.objects.create(
        vm=VMFactory(host=first), source_host=first, destination_host=source, plan={"outgoing_limit": 1}
    )
    assert evacuate(source, django_capture_on_commit_callbacks).status == HostStatus.MAINTENANCE
    assert MigrationJob.objects.get(pk=incoming.pk).state == JobState.CANCELLED


def test_the_page_confirms_what_will_move_and_shows_the_progress(client, estate, django_capture_on_commit_callbacks):
    from tests.pages.test_permissions import operator_client

    _cluster, (source, _first, _second) = estate
    VMFactory(host=source, memory_mib=4 * GIB)
    VMFactory(host=source, memory_mib=2 * GIB)
    client = operator_client(client)
    confirm = client.get(f"/hosts/{source.pk}/maintenance/").content.decode()
    assert "2 VM(s) with 6.0 GiB of memory will be migrated" in confirm, confirm
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/hosts/{source.pk}/maintenance/").status_code == 302
    page = client.get(f"/hosts/{source.pk}/").content.decode()
    assert 'id="evacuation"' in page and "Preparing for maintenance" in page
    assert '<dd id="evacuation-waiting">2 ' in page  # the cluster's policy lets both start; none claimed yet


@pytest.mark.parametrize(
    ("handling", "moved"),
    [("migrate", {"ha", "plain"}), ("migrate_highly_available", {"ha"}), ("do_not_migrate", set())],
)
def test_a_host_that_fails_while_its_agent_answers_moves_what_its_cluster_says(
    estate, django_capture_on_commit_callbacks, handling, moved
):
    from migrations_app.agent_services import report_capabilities

    cluster, (source, _first, _second) = estate
    cluster.error_handling = handling
    cluster.save()
    VMFactory(host=source, name="ha", highly_available=True)
    VMFactory(host=source, name="plain")
    VMFactory(host=source, name="off", status="down", highly_available=True)
    with django_capture_on_commit_callbacks(execute=True):
        answer = report_capabilities(source, {"error": {"check": "libvirt_connection", "message": "timed out"}})
    assert answer == {"status": "non_operational"}
    jobs = MigrationJob.objects.filter(source_host=source)
    assert {job.vm.name for job in jobs} == moved
    assert all(job.evacuation.trigger == "error_handling" for job in jobs)
    if moved:
        assert sent(source)  # handed to the outbox like any other job
    # A second failed report while it is already non operational starts nothing new.
    with django_capture_on_commit_callbacks(execute=True):
        report_capabilities(source, {"error": {"check": "libvirt_connection", "message": "timed out"}})
    assert MigrationJob.objects.filter(source_host=source).count() == len(moved)
    for job in jobs:
        finish(job, on_commit=django_capture_on_commit_callbacks)
    source.refresh_from_db()
    assert source.status == HostStatus.NON_OPERATIONAL  # monitoring's status: not maintenance
    if moved:
        assert Evacuation.objects.get(host=source).outcome == "done"


def test_an_evacuation_starts_its_jobs_by_vm_priority_then_by_age(estate, django_capture_on_commit_callbacks):
    """Fair order: a queued job of a higher-priority VM starts before older ones of the same
    evacuation, also when the priority was raised while the job waited."""
    cluster, (source, _first, _second) = estate
    cluster.migration_policy_id = VERY_LARGE_VMS_ID  # one migration per host: the order is visible
    cluster.save()
    low_big = VMFactory(host=source, name="low-big", memory_mib=8 * GIB, priority=VMPriority.LOW)
    high = VMFactory(host=source, name="high", memory_mib=2 * GIB, priority=VMPriority.HIGH)
    medium = VMFactory(host=source, name="medium", memory_mib=4 * GIB, priority=VMPriority.MEDIUM)
    evacuate(source, django_capture_on_commit_callbacks)
    by_vm = {job.vm_id: job for job in MigrationJob.objects.filter(source_host=source)}
    order = []
    for _ in range(3):
        (job_id,) = sent(source)
        job = next(job for job in by_vm.values() if str(job.pk) == job_id)
        order.append(job.vm_id)
        if len(order) == 1:
            # While the first runs, the low-priority VM is raised above the medium one, whose job is older.
            assert by_vm[medium.pk].created_at < by_vm[low_big.pk].created_at
            VM.objects.filter(pk=low_big.pk).update(priority=VMPriority.HIGH)
        finish(job, on_commit=django_capture_on_commit_callbacks)
    assert order == [high.pk, low_big.pk, medium.pk]


def test_jobs_outside_an_evacuation_keep_their_age_order():
    from migrations_app.dispatch import fair_order

    cluster = ClusterFactory()
    source, destination = make_host(cluster, name="s"), make_host(cluster, name="d")
    low = VMFactory(host=source, priority=VMPriority.LOW)
    high = VMFactory(host=source, priority=VMPriority.HIGH)
    older = MigrationJob.objects.create(vm=low, source_host=source, destination_host=destination, plan={})
    MigrationJob.objects.create(vm=high, source_host=source, destination_host=destination, plan={})
    jobs = MigrationJob.objects.annotate(vm_priority=F("vm__priority")).order_by("created_at", "pk")
    assert fair_order(jobs)[0] == older
