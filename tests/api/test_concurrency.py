"""Two writers at the same moment, on real PostgreSQL connections: the version check holds.

Each writer is a thread with its own database connection and its own HTTP client; a barrier
releases them together. The services' conditional UPDATE (and, for migrations, the partial
unique index) decide, so exactly one of two writers holding the same ETag wins.
"""

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clusters.models import Cluster
from core.models import AuditEntry
from migrations_app import tasks
from migrations_app.models import MigrationJob
from tests.factories import ClusterFactory, HostFactory, UserFactory, VMFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs concurrent connections to PostgreSQL (SQLite serialises writers on one file lock)",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


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
    return Token.objects.create(user=UserFactory(username="admin", is_staff=True, is_superuser=True)).key


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


def test_two_simultaneous_migrations_of_one_vm_start_exactly_one_job(token, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.migrate, "apply_async", lambda *args, **kwargs: sent.append(kwargs))
    source = HostFactory()
    destination = HostFactory(cluster=source.cluster)
    vm = VMFactory(host=source)

    statuses = race(token, "post", f"/api/vms/{vm.pk}/migrate/", [{"destination_host": str(destination.pk)}] * 2)

    assert sorted(statuses) == [202, 409]
    assert MigrationJob.objects.filter(vm=vm).count() == 1
    assert len(sent) == 1, "only the committed job is handed to Celery"
