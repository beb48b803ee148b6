"""Jobs reach their agents through an outbox, and running jobs are watched by their heartbeats.

- A migration asked for while the broker is down is accepted (202, queued) and waits, saying so;
  it is sent once the broker answers (the broker's failure is real: Celery publishes to a port
  where nothing listens, with kombu's own retries, see tests/broker.py).
- Only jobs that can start are sent; a busy claim goes back to the outbox; a finished job sends
  the next waiting one of its hosts at once; nothing cycles through the broker.
- A sent job never claimed while its agent reports is sent again; queue time never ends a job.
- A running job whose agent stops reporting is handed to that agent's reconcile task after the
  heartbeat timeout (not after hours), and failed as agent_lost only after FERRY_AGENT_LOST_S.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.routing import host_queue
from migrations_app import dispatch
from migrations_app.agent_services import Claim, job_claim, migration_claim, migration_finish
from migrations_app.models import JobState, MigrationJob
from migrations_app.selectors import migration_plan
from migrations_app.tasks import reconcile
from tests import broker
from tests.api.conftest import token_client
from tests.factories import ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    cluster = ClusterFactory()
    return HostFactory(cluster=cluster), HostFactory(cluster=cluster)


@pytest.fixture(autouse=True)
def empty_queues(pair):
    for host in pair:
        broker.purge(host_queue(host.pk))
    yield
    for host in pair:
        broker.purge(host_queue(host.pk))


def queued(vm, destination, **fields):
    return MigrationJob.objects.create(
        vm=vm,
        source_host=vm.host,
        destination_host=destination,
        plan=migration_plan(vm=vm, destination=destination).to_dict(),
        **fields,
    )


def sent_jobs(host) -> list[str]:
    return [message.args[1] for message in broker.take(host_queue(host.pk), wait_s=0.5)]


def test_migrate_while_the_broker_is_down_is_accepted_and_sent_when_it_answers(admin_user, pair):
    source, destination = pair
    vm = VMFactory(host=source)
    api = token_client(admin_user)
    with broker.unreachable():
        response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, format="json")
        assert response.status_code == 202, response.content
        job = MigrationJob.objects.get(pk=response.json()["id"])
        assert (job.state, job.dispatched_at) == (JobState.QUEUED, None)
        waiting = api.get(f"/api/migrations/{job.pk}/").json()["waiting"]
        assert "broker" in waiting, waiting
        assert reconcile() == 0  # the scheduler's round: the broker is still down, the job still waits
        assert MigrationJob.objects.get(pk=job.pk).dispatched_at is None
    reconcile()  # the broker answers again
    assert sent_jobs(source) == [str(job.pk)]
    assert MigrationJob.objects.get(pk=job.pk).dispatched_at is not None


def test_only_jobs_that_can_start_are_sent_and_a_finished_one_sends_the_next(pair, django_capture_on_commit_callbacks):
    source, destination = pair
    jobs = [queued(VMFactory(host=source), destination) for _ in range(3)]
    assert jobs[0].plan["outgoing_limit"] == 2  # Minimal downtime, not parallel
    assert dispatch.dispatch_ready() == 2
    assert sorted(sent_jobs(source)) == sorted(str(j.pk) for j in jobs[:2])
    assert dispatch.dispatch_ready() == 0  # the third waits in the table, not in the broker
    assert migration_claim(job_id=str(jobs[0].pk)) is Claim.STARTED
    with django_capture_on_commit_callbacks(execute=True):
        migration_finish(job_id=str(jobs[0].pk), state=JobState.SUCCEEDED, error=None, stats={})
    assert sent_jobs(source) == [str(jobs[2].pk)]


def test_a_busy_claim_goes_back_to_the_outbox(pair):
    source, destination = pair
    first, second, third = (queued(VMFactory(host=source), destination) for _ in range(3))
    for job in (first, second):
        assert migration_claim(job_id=str(job.pk)) is Claim.STARTED
    MigrationJob.objects.filter(pk=third.pk).update(dispatched_at=timezone.now())
    assert job_claim(source, str(third.pk)) == {"claim": "busy"}
    assert MigrationJob.objects.get(pk=third.pk).dispatched_at is None


def test_a_sent_job_never_claimed_while_its_agent_reports_is_sent_again(pair, settings):
    settings.FERRY_REDISPATCH_S = 60
    source, destination = pair
    now = timezone.now()
    job = queued(VMFactory(host=source), destination, dispatched_at=now - timedelta(seconds=120))
    from clusters.models import Host

    Host.objects.filter(pk=source.pk).update(capabilities_updated_at=now - timedelta(seconds=300))
    dispatch.dispatch_ready(now=now)
    assert sent_jobs(source) == []  # its agent has not reported since: the message waits for it
    Host.objects.filter(pk=source.pk).update(capabilities_updated_at=now - timedelta(seconds=10))
    dispatch.dispatch_ready(now=now)
    assert sent_jobs(source) == [str(job.pk)]


def test_queue_time_never_ends_a_job(pair):
    source, destination = pair
    job = queued(VMFactory(host=source), destination)
    MigrationJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2))
    reconcile()
    assert MigrationJob.objects.get(pk=job.pk).state == JobState.QUEUED


def test_a_running_job_whose_agent_stops_reporting_is_handed_to_its_agent_then_failed_when_lost(pair, settings):
    settings.FERRY_HEARTBEAT_TIMEOUT_S = 60
    settings.FERRY_AGENT_LOST_S = 600
    source, destination = pair
    now = timezone.now()
    fresh = queued(VMFactory(host=source), destination, state=JobState.RUNNING, started_at=now - timedelta(hours=5),
                   heartbeat_at=now - timedelta(seconds=5))  # fmt: skip
    quiet = queued(VMFactory(host=source), destination, state=JobState.RUNNING, started_at=now - timedelta(hours=5),
                   heartbeat_at=now - timedelta(seconds=90))  # fmt: skip

    assert reconcile() == 1
    assert [(m.task, m.args[1]) for m in broker.take(host_queue(source.pk), wait_s=0.5)] == [
        ("ferry.reconcile_job", str(quiet.pk))
    ]
    assert reconcile() == 0  # asked once per heartbeat timeout, not at every round
    assert MigrationJob.objects.get(pk=fresh.pk).state == JobState.RUNNING  # a 5-hour run that reports

    MigrationJob.objects.filter(pk=quiet.pk).update(
        heartbeat_at=now - timedelta(seconds=700), reconcile_sent_at=now - timedelta(seconds=120)
    )
    assert reconcile() == 1
    quiet.refresh_from_db()
    assert (quiet.state, quiet.error["code"]) == (JobState.FAILED, "agent_lost")


def test_cancel_of_a_job_whose_agent_is_silent_asks_the_agent_to_end_it(
    admin_user, pair, settings, django_capture_on_commit_callbacks
):
    settings.FERRY_HEARTBEAT_TIMEOUT_S = 60
    source, destination = pair
    now = timezone.now()
    job = queued(VMFactory(host=source), destination, state=JobState.RUNNING, started_at=now - timedelta(hours=1),
                 heartbeat_at=now - timedelta(seconds=300))  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(admin_user).post(f"/api/migrations/{job.pk}/cancel/")
    assert response.status_code == 200
    messages = broker.take(host_queue(source.pk), wait_s=0.5)
    assert [(m.task, m.args) for m in messages] == [("ferry.reconcile_job", [str(source.pk), str(job.pk)])]
