"""Lists at estate scale: search over names, domain UUIDs, addresses and host names; counts that do
not read every row of a large table (PostgreSQL's estimate, flagged as such); constant queries."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.models import VM
from tests.factories import ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the estimated count is PostgreSQL's (DATABASE_URL=postgres://...)"
)


def names(response) -> set[str]:
    assert response.status_code == 200, response.content[:300]
    return {row["name"] for row in response.json()["results"]}


@pytest.fixture
def two_hosts(db):
    cluster = ClusterFactory(name="prod-east", description="Rack 7, second floor")
    alpha = HostFactory(cluster=cluster, name="kvm-alpha", address="10.20.30.41")
    beta = HostFactory(cluster=cluster, name="kvm-beta", address="10.20.31.7")
    VMFactory(host=alpha, name="db-1")
    VMFactory(host=alpha, name="web-1")
    VMFactory(host=beta, name="cache-1")
    return alpha, beta


def test_a_vm_is_found_by_its_whole_domain_uuid_in_either_case(api, two_hosts):
    vm = VM.objects.get(name="cache-1")
    assert names(api.get("/api/vms/", {"q": str(vm.uuid)})) == {"cache-1"}
    assert names(api.get("/api/vms/", {"q": str(vm.uuid).upper()})) == {"cache-1"}
    assert names(api.get("/api/vms/", {"q": str(uuid.uuid4())})) == set()


def test_vms_are_found_by_their_hosts_name(api, two_hosts):
    assert names(api.get("/api/vms/", {"q": "kvm-alpha"})) == {"db-1", "web-1"}
    assert names(api.get("/api/vms/", {"q": "BETA"})) == {"cache-1"}


def test_vms_are_still_found_by_part_of_their_name(api, two_hosts):
    assert names(api.get("/api/vms/", {"q": "web"})) == {"web-1"}


def test_hosts_are_found_by_part_of_their_address(api, two_hosts):
    assert names(api.get("/api/hosts/", {"q": "10.20.31."})) == {"kvm-beta"}
    assert names(api.get("/api/hosts/", {"q": "10.20.3"})) == {"kvm-alpha", "kvm-beta"}


def test_clusters_are_found_by_their_description(api, two_hosts):
    ClusterFactory(name="prod-west", description="Rack 9")
    assert names(api.get("/api/clusters/", {"q": "second floor"})) == {"prod-east"}


def test_the_vms_page_finds_vms_by_host_name_and_uuid(admin_client, two_hosts):
    page = admin_client.get("/vms/", {"q": "kvm-beta"}).content.decode()
    assert "cache-1" in page and "db-1" not in page
    vm = VM.objects.get(name="db-1")
    page = admin_client.get("/vms/", {"q": str(vm.uuid)}).content.decode()
    assert "db-1" in page and "web-1" not in page and "cache-1" not in page


def test_the_hosts_page_finds_hosts_by_address(admin_client, two_hosts):
    page = admin_client.get("/hosts/", {"q": "10.20.30.41"}).content.decode()
    assert "kvm-alpha" in page and "kvm-beta" not in page


def test_a_small_list_is_counted_exactly_and_says_so(api, two_hosts):
    response = api.get("/api/vms/")
    body = response.json()
    assert body["count"] == 3 and body["count_is_estimate"] is False
    assert "X-Count-Is-Estimate" not in response.headers


def test_the_schema_documents_the_estimate(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    page = schema["components"]["schemas"]["PaginatedVMList"]
    assert "count_is_estimate" in page["required"]
    assert page["properties"]["count_is_estimate"]["type"] == "boolean"
    assert "estimate" in page["properties"]["count"]["description"]


def test_a_list_costs_the_same_queries_with_a_search_at_3_and_300_vms(api, two_hosts, django_assert_max_num_queries):
    alpha, _ = two_hosts
    with CaptureQueriesContext(connection) as few:
        api.get("/api/vms/", {"q": "kvm-alpha", "ordering": "-cluster"})
    VM.objects.bulk_create(
        VM(name=f"bulk-{i}", uuid=uuid.uuid4(), host=alpha, memory_mib=1024, vcpus=2) for i in range(300)
    )
    with django_assert_max_num_queries(len(few)):
        response = api.get("/api/vms/", {"q": "kvm-alpha", "ordering": "-cluster", "limit": 1000})
    assert response.json()["count"] == 302


# ------------------------------------------------------------------------------ PostgreSQL's estimate
@pytest.fixture
def analysed_vms(settings, two_hosts):
    """30 VMs more, the table analysed (its estimate: 33 rows), then 5 more that the estimate has not seen."""
    settings.FERRY_EXACT_COUNT_MAX = 10
    alpha, _ = two_hosts
    VM.objects.bulk_create(
        VM(name=f"seen-{i:02}", uuid=uuid.uuid4(), host=alpha, memory_mib=1024, vcpus=2) for i in range(30)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {VM._meta.db_table}")
    VM.objects.bulk_create(
        VM(name=f"unseen-{i}", uuid=uuid.uuid4(), host=alpha, memory_mib=1024, vcpus=2) for i in range(5)
    )
    return alpha


@on_postgresql
def test_an_unfiltered_large_list_reports_the_planners_estimate(api, analysed_vms):
    response = api.get("/api/vms/", {"limit": 10})
    body = response.json()
    # 33 rows when analysed, 38 now: the count is the estimate, not COUNT(*), and says so.
    assert body["count"] == 33
    assert body["count_is_estimate"] is True
    assert response.headers["X-Count-Is-Estimate"] == "true"
    assert len(body["results"]) == 10


@on_postgresql
def test_pages_past_the_estimate_are_still_reached(api, analysed_vms):
    seen, url = [], "/api/vms/?limit=10"
    while url:
        body = api.get(url).json()
        seen += [row["name"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == 38 and len(set(seen)) == 38


@on_postgresql
def test_a_filtered_list_is_counted_exactly(api, analysed_vms):
    body = api.get("/api/vms/", {"host": analysed_vms.pk}).json()
    assert body["count"] == 37 and body["count_is_estimate"] is False
    body = api.get("/api/vms/", {"q": "unseen"}).json()
    assert body["count"] == 5 and body["count_is_estimate"] is False


@on_postgresql
def test_below_the_threshold_the_count_is_exact(api, analysed_vms, settings):
    settings.FERRY_EXACT_COUNT_MAX = 1000
    body = api.get("/api/vms/").json()
    assert body["count"] == 38 and body["count_is_estimate"] is False


@on_postgresql
def test_the_vms_page_says_about_when_it_shows_an_estimate(admin_client, analysed_vms):
    page = admin_client.get("/vms/").content.decode()
    assert "About 33 VMs" in page
    filtered = admin_client.get("/vms/", {"q": "unseen"}).content.decode()
    assert "About" not in filtered and "5 VMs match the filters" in filtered
