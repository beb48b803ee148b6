"""Two writers at the same moment, on the suite's database (SQLite by default, PostgreSQL in CI):
the version check holds, and a stale write is a 412, never a 500.

Each writer is a thread with its own database connection and its own HTTP client; a barrier
releases them together. The services' conditional UPDATE (and, for migrations, the partial
unique index) decide, so exactly one of two writers holding the same ETag wins. On SQLite this
needs transactions that take the write lock when they begin (config/settings.py): with SQLite's
deferred default, the second writer fails with "database is locked" instead of waiting.
"""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from clusters.models import Cluster
from core.models import AuditEntry
from migrations_app.agent_services import Claim, migration_claim
from migrations_app.models import MigrationJob
from tests.broker import Sent, take
from tests.factories import ClusterFactory, HostFactory, JobFactory, UserFactory, VMFactory, api_key

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def at_once(*calls):
    """Run the callables in threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # reported by the test as a result
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def race(token: str, method: str, url: str, bodies: list[dict], headers: dict | None = None) -> list[int]:
    """Send one request per body, all released at once; the statuses, in the order of `bodies`."""
    barrier = threading.Barrier(len(bodies))
    statuses: list[int | None] = [None] * len(bodies)

    def writer(index: int, body: dict) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            barrier.wait(timeout=10)
            response = getattr(client, method)(url, body, format="json", **(headers or {}))
            statuses[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.fixture
def token(db):
    return api_key(UserFactory(username="admin", is_staff=True, is_superuser=True))


@pytest.mark.parametrize("round_", range(5))
def test_two_writers_with_the_same_etag_exactly_one_wins(token, round_):
    cluster = ClusterFactory()
    bodies = [{"description": "written by A"}, {"description": "written by B"}]

    statuses = race(token, "patch", f"/api/clusters/{cluster.pk}/", bodies, {"HTTP_IF_MATCH": '"1"'})

    assert sorted(statuses) == [200, 412]
    winner = bodies[statuses.index(200)]["description"]
    stored = Cluster.objects.get(pk=cluster.pk)
    assert (stored.version, stored.description) == (2, winner)
    updates = AuditEntry.objects.filter(object_id=str(cluster.pk), action="update")
    assert [entry.after for entry in updates] == [{"description": winner}]


def test_two_writers_without_if_match_both_apply_in_turn(token):
    cluster = ClusterFactory()
    statuses = race(token, "patch", f"/api/clusters/{cluster.pk}/", [{"description": "A"}, {"description": "B"}])
    assert statuses == [200, 200]
    assert Cluster.objects.get(pk=cluster.pk).version == 3
    assert AuditEntry.objects.filter(object_id=str(cluster.pk), action="update").count() == 2


def test_two_simultaneous_migrations_of_one_vm_start_exactly_one_job(token, settings):
    settings.FERRY_HOST_QUEUES = True
    source = HostFactory()
    destination = HostFactory(cluster=source.cluster)
    vm = VMFactory(host=source)

    statuses = race(token, "post", f"/api/vms/{vm.pk}/migrate/", [{"destination_host": str(destination.pk)}] * 2)

    assert sorted(statuses) == [202, 409]
    job = MigrationJob.objects.get(vm=vm)
    assert take(f"host.{source.pk}") == [Sent(task="ferry.migrate", args=[str(source.pk), str(job.pk)], kwargs={})], (
        "only the committed job is handed to the broker"
    )


@pytest.mark.parametrize("round_", range(3))
def test_two_deliveries_of_one_job_claim_it_exactly_once(round_):
    job = JobFactory()

    outcomes = at_once(*[lambda: migration_claim(job_id=str(job.pk))] * 2)

    assert sorted(str(outcome) for outcome in outcomes) == [str(Claim.NOT_QUEUED), str(Claim.STARTED)]
    assert MigrationJob.objects.get(pk=job.pk).state == "running"
    assert AuditEntry.objects.filter(object_id=str(job.pk), action="start").count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_two_claims_at_a_hosts_limit_start_only_what_the_limit_allows(round_):
    first = JobFactory()
    second = JobFactory(vm=VMFactory(host=first.source_host), destination_host=first.destination_host)
    limited = {**first.plan, "outgoing_limit": 1}
    MigrationJob.objects.filter(pk__in=[first.pk, second.pk]).update(plan=limited)

    outcomes = at_once(lambda: migration_claim(job_id=str(first.pk)), lambda: migration_claim(job_id=str(second.pk)))

    assert sorted(str(outcome) for outcome in outcomes) == [str(Claim.BUSY), str(Claim.STARTED)]
    assert MigrationJob.objects.filter(state="running").count() == 1
