"""Clusters and hosts through the API: contract defaults, level rules, capabilities, refresh."""

import pytest

from clusters.models import Cluster, Host
from core.models import AuditEntry
from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID
from tests.broker import Sent, take
from tests.factories import ZEROCOPY_HOST, ClusterFactory, VMFactory

pytestmark = pytest.mark.django_db


def test_a_cluster_created_with_a_name_only_has_the_contract_defaults(api):
    response = api.post("/api/clusters/", {"name": "prod"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert {key: value for key, value in body.items() if key != "id"} == {
        "name": "prod",
        "description": "",
        "compatibility_version": "4.7",
        "migration_policy": str(MINIMAL_DOWNTIME_ID),
        "migration_policy_name": "Minimal downtime",
        "migration_bandwidth": "auto",
        "migration_bandwidth_custom_mbps": None,
        "migration_auto_converge": "inherit",
        "migration_compressed": "inherit",
        "migration_encrypted": "inherit",
        "parallel_migrations_policy": "disabled",
        "custom_parallel_migrations": None,
        "error_handling": "migrate",
        "version": 1,
    }


def test_a_policy_not_offered_at_the_clusters_level_is_refused_and_nothing_is_stored(api):
    body = {"name": "old", "compatibility_version": "4.6", "migration_policy": str(VERY_LARGE_VMS_ID)}
    response = api.post("/api/clusters/", body, format="json")
    assert response.status_code == 400
    assert "parallel migrations" in " ".join(response.json()["migration_policy"])
    assert not Cluster.objects.exists()
    assert not AuditEntry.objects.exists()


def test_moving_a_very_large_vms_cluster_to_a_level_without_parallel_is_refused(api, level):
    cluster = ClusterFactory(compatibility_version=level("4.8"), migration_policy_id=VERY_LARGE_VMS_ID)
    response = api.patch(f"/api/clusters/{cluster.pk}/", {"compatibility_version": "4.6"}, format="json")
    assert response.status_code == 400
    assert "migration_policy" in response.json()
    cluster.refresh_from_db()
    assert (cluster.compatibility_version_id, cluster.version) == ("4.8", 1)


def test_choosing_very_large_vms_at_4_7_is_accepted(api, level):
    cluster = ClusterFactory(compatibility_version=level("4.7"))
    response = api.patch(f"/api/clusters/{cluster.pk}/", {"migration_policy": str(VERY_LARGE_VMS_ID)}, format="json")
    assert response.status_code == 200
    assert response.json()["migration_policy_name"] == "Very large VMs"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"parallel_migrations_policy": "custom"}, "custom_parallel_migrations"),
        ({"parallel_migrations_policy": "custom", "custom_parallel_migrations": 300}, "custom_parallel_migrations"),
        ({"migration_bandwidth": "custom"}, "migration_bandwidth_custom_mbps"),
        ({"compatibility_version": "4.5", "parallel_migrations_policy": "auto"}, "parallel_migrations_policy"),
        ({"migration_policy": "00000000-0000-4000-8000-000000000000"}, "migration_policy"),
        ({"compatibility_version": "5.0"}, "compatibility_version"),
        ({"name": "tab\there"}, "name"),
        ({"migration_encrypted": True}, "migration_encrypted"),
    ],
)
def test_model_rules_and_types_reach_the_client_as_field_messages(api, body, field):
    response = api.post("/api/clusters/", {"name": "c1", **body}, format="json")
    assert response.status_code == 400
    assert isinstance(response.json()[field], list)
    assert not Cluster.objects.exists()


def test_a_cluster_with_hosts_cannot_be_deleted(api, estate):
    response = api.delete(f"/api/clusters/{estate.cluster.pk}/")
    assert response.status_code == 400
    assert "still used" in " ".join(response.json()["non_field_errors"])


def test_a_host_with_vms_cannot_be_deleted(api, estate):
    response = api.delete(f"/api/hosts/{estate.source.pk}/")
    assert response.status_code == 400
    assert "still used" in " ".join(response.json()["non_field_errors"])
    assert Host.objects.filter(pk=estate.source.pk).exists()


def test_capabilities_are_read_only_on_the_host(api, estate):
    host = estate.spare_host
    response = api.patch(f"/api/hosts/{host.pk}/", {"capabilities": {"cpu_count": 1}}, format="json")
    assert response.status_code == 200
    assert response.json()["capabilities"] == dict(ZEROCOPY_HOST, addresses=[host.address])


def test_admins_set_hosts_up_or_maintenance_only(api, estate):
    response = api.patch(f"/api/hosts/{estate.spare_host.pk}/", {"status": "non_operational"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()
    assert api.patch(f"/api/hosts/{estate.spare_host.pk}/", {"status": "maintenance"}, format="json").status_code == 200


def test_the_schema_offers_writes_only_the_statuses_admins_may_set():
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]

    def statuses(component: str) -> list[str]:
        reference = schemas[component]["properties"]["status"]["allOf"][0]["$ref"]
        return schemas[reference.rsplit("/", 1)[1]]["enum"]

    assert statuses("HostRequest") == statuses("PatchedHostRequest") == ["up", "maintenance"]
    assert set(statuses("Host")) == {
        "up",
        "activating",
        "maintenance",
        "preparing_for_maintenance",
        "non_operational",
        "unknown",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("libvirt_uri", "qemu+tls://[/system"),  # urlsplit raised ValueError: a 500
        ("libvirt_uri", "qemu://[/system"),
        ("address", "6"),  # digits only: not a host name, and not an IPv4 address
        ("address", "1.2.3.256"),
        ("address", "a..b"),
    ],
)
def test_a_malformed_connection_field_is_a_400_naming_it(api, estate, field, value):
    body = {"name": "hv-new", "cluster": str(estate.cluster.pk), "address": "10.9.9.9", "libvirt_uri": "qemu:///system"}
    response = api.post("/api/hosts/", body | {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


def test_refresh_is_audited_and_sends_the_task_to_the_hosts_queue_after_commit(
    api, estate, django_capture_on_commit_callbacks, settings
):
    settings.FERRY_HOST_QUEUES = True
    queue = f"host.{estate.source.pk}"

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/hosts/{estate.source.pk}/refresh/")
        assert response.status_code == 202
        assert take(queue, wait_s=0.5) == [], "nothing is sent before the commit"

    for callback in callbacks:
        callback()
    host_id = str(estate.source.pk)
    assert sorted(take(queue), key=str) == [
        Sent(task="ferry.refresh_capabilities", args=[host_id], kwargs={}),
        Sent(task="ferry.sync_inventory", args=[host_id], kwargs={}),
    ]
    entry = AuditEntry.objects.get(action="refresh")
    assert (entry.object_type, entry.object_id, entry.actor) == ("host", host_id, "admin")


def test_vms_show_their_hosts_cluster(api, estate):
    vm = VMFactory(host=estate.destination)
    assert api.get(f"/api/vms/{vm.pk}/").json()["cluster"] == str(estate.cluster.pk)
