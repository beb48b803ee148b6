"""List endpoints run a fixed number of queries, whatever the number of rows (select_related/prefetch)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import VM, Cluster, ClusterLevel, Host
from core.models import ApiToken, AuditEntry
from migrations_app.models import JobState, MigrationJob
from policies.models import MigrationPolicy
from tests.api.figures import FIGURES, record
from tests.factories import ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db


def add_levels(start: int, count: int, estate) -> None:
    ClusterLevel.objects.bulk_create(ClusterLevel(level=f"9.{i}") for i in range(start, start + count))


def add_policies(start: int, count: int, estate) -> None:
    MigrationPolicy.objects.bulk_create(MigrationPolicy(name=f"policy {i}") for i in range(start, start + count))


def add_clusters(start: int, count: int, estate) -> None:
    Cluster.objects.bulk_create(Cluster(name=f"cluster {i}") for i in range(start, start + count))


def add_hosts(start: int, count: int, estate) -> None:
    Host.objects.bulk_create(
        Host(
            name=f"bulk-host-{i}",
            cluster=estate["cluster"],
            address=f"10.1.{i // 250}.{i % 250 + 1}",
            libvirt_uri="qemu:///system",
        )
        for i in range(start, start + count)
    )


def add_vms(start: int, count: int, estate) -> None:
    VM.objects.bulk_create(
        VM(name=f"vm-{i}", uuid=uuid.uuid4(), host=estate["hosts"][i % 2], memory_mib=1024, vcpus=2)
        for i in range(start, start + count)
    )


def add_jobs(start: int, count: int, estate) -> None:
    now = timezone.now()
    MigrationJob.objects.bulk_create(
        MigrationJob(
            vm=estate["vm"],
            source_host=estate["hosts"][i % 2],
            destination_host=estate["hosts"][(i + 1) % 2],
            state=JobState.SUCCEEDED,
            progress=100,
            plan={},
            created_by=estate["user"],
            finished_at=now,
        )
        for i in range(start, start + count)
    )


def add_audit(start: int, count: int, estate) -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(actor="admin", user=estate["user"], action="update", object_type="cluster", object_id=str(i))
        for i in range(start, start + count)
    )


def add_tokens(start: int, count: int, estate) -> None:
    ApiToken.objects.bulk_create(
        ApiToken(user=estate["user"], name=f"token {i}", key_hash=f"{i:064x}", prefix=f"{i:08x}")
        for i in range(start, start + count)
    )


LISTS = {
    "/api/cluster-levels/": add_levels,
    "/api/migration-policies/": add_policies,
    "/api/clusters/": add_clusters,
    "/api/hosts/": add_hosts,
    "/api/vms/": add_vms,
    "/api/migrations/": add_jobs,
    "/api/audit-log/": add_audit,
    "/api/tokens/": add_tokens,
}


def queries(api, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as context:
        response = api.get(url, {"limit": 1000})
    assert response.status_code == 200
    return len(context), len(response.json()["results"])


@pytest.mark.slow
@pytest.mark.parametrize("url", LISTS)
def test_a_list_costs_the_same_queries_at_10_and_1000_rows(api, admin_user, url):
    cluster = ClusterFactory()
    hosts = [HostFactory(cluster=cluster), HostFactory(cluster=cluster)]
    estate = {"cluster": cluster, "hosts": hosts, "vm": VMFactory(host=hosts[0]), "user": admin_user}
    add = LISTS[url]

    add(0, 10, estate)
    few, rows_few = queries(api, url)
    add(10, 990, estate)
    many, rows_many = queries(api, url)

    assert rows_few >= 10 and rows_many >= 1000
    assert few == many, f"{url}: {few} queries at {rows_few} rows, {many} at {rows_many}"
    record("list_queries_at_1000_rows", {**FIGURES.get("list_queries_at_1000_rows", {}), url: many})
