"""What the oVirt-compatible API answers: oVirt's shapes and enum spellings in XML and JSON, searches,
statuses that follow the jobs, and writes that go through Ferry's services."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from clusters.models import Cluster, HostStatus
from core.models import AuditEntry
from migrations_app.models import JobState, MigrationJob
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import HostFactory, JobFactory, VMFactory
from tests.ovirt_api.test_faults import fault_of

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json"}


def xml(response, status: int = 200) -> ElementTree.Element:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/xml"
    return ElementTree.fromstring(response.content)  # noqa: S314  (Ferry's own answer)


def names(response) -> list[str]:
    return [item.findtext("name") for item in xml(response)]


def test_the_root_links_every_collection(ovirt):
    root = xml(ovirt.get(""))

    assert root.tag == "api"
    assert {link.get("rel"): link.get("href") for link in root.findall("link")} == {
        rel: f"/ovirt-engine/api/{rel}" for rel in ("clusters", "hosts", "vms", "jobs")
    }
    assert root.findtext("product_info/version/major") == "4"


def test_a_cluster_in_xml_has_the_engines_shape(ovirt, ovirt_estate):
    cluster = xml(ovirt.get(f"/clusters/{ovirt_estate.prod.pk}"))

    assert cluster.get("href") == f"/ovirt-engine/api/clusters/{ovirt_estate.prod.pk}"
    assert cluster.get("id") == str(ovirt_estate.prod.pk)
    assert (cluster.findtext("version/major"), cluster.findtext("version/minor")) == ("4", "7")
    assert cluster.findtext("error_handling/on_error") == "migrate"
    assert cluster.findtext("migration/bandwidth/assignment_method") == "auto"
    assert cluster.findtext("migration/parallel_migrations_policy") == "disabled"
    assert cluster.find("migration/policy").get("id") == "80554327-0569-496b-bdeb-fcbbf52b827b"


def test_json_when_asked_for_it(ovirt, ovirt_estate):
    listed = ovirt.get("/clusters", headers=JSON, search="name=prod")
    one = ovirt.get(f"/vms/{ovirt_estate.vm.pk}", headers=JSON)

    assert listed["Content-Type"] == "application/json"
    (cluster,) = listed.json()["cluster"]
    assert cluster["id"] == str(ovirt_estate.prod.pk)
    assert cluster["href"] == f"/ovirt-engine/api/clusters/{ovirt_estate.prod.pk}"
    assert cluster["version"] == {"major": 4, "minor": 7}
    assert cluster["migration"]["policy"] == {"id": "80554327-0569-496b-bdeb-fcbbf52b827b"}
    vm = one.json()
    assert vm["name"] == "db-1" and vm["status"] == "up"
    assert vm["memory"] == 2048 * 1024 * 1024
    assert vm["host"] == {"href": f"/ovirt-engine/api/hosts/{ovirt_estate.hv_a.pk}", "id": str(ovirt_estate.hv_a.pk)}
    assert ovirt.get("", headers=JSON).json()["link"][0] == {"href": "/ovirt-engine/api/clusters", "rel": "clusters"}


def test_a_json_fault(ovirt):
    response = ovirt.get("/vms", headers=JSON, search="color=red")

    assert response.status_code == 400
    assert response.json()["reason"] == "Operation Failed"
    assert "Unknown search field" in response.json()["detail"]


def test_a_json_update_and_a_json_migrate(ovirt, ovirt_estate):
    body = {"migration": {"encrypted": "true", "policy": {"id": str(VERY_LARGE_VMS_ID)}}}
    updated = ovirt.put(
        f"/clusters/{ovirt_estate.prod.pk}", json.dumps(body), headers=JSON | {"Content-Type": "application/json"}
    )
    action = ovirt.post(
        f"/vms/{ovirt_estate.vm.pk}/migrate",
        json.dumps({"host": {"id": str(ovirt_estate.hv_b.pk)}}),
        headers=JSON | {"Content-Type": "application/json"},
    )

    assert updated.status_code == 200, updated.content
    assert updated.json()["migration"]["encrypted"] == "true"
    assert Cluster.objects.get(pk=ovirt_estate.prod.pk).migration_policy_id == VERY_LARGE_VMS_ID
    assert action.status_code == 200, action.content
    assert action.json()["status"] == "complete"
    assert action.json()["job"]["id"] == str(MigrationJob.objects.get().pk)


def test_putting_back_what_was_read_changes_nothing(ovirt, ovirt_estate):
    """Scripts often GET an object, change a field and PUT the whole of it back."""
    read = ovirt.get(f"/clusters/{ovirt_estate.prod.pk}").content
    version, audit = Cluster.objects.get(pk=ovirt_estate.prod.pk).version, AuditEntry.objects.count()

    response = ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", read)

    assert response.status_code == 200, response.content
    assert response.content.replace(b"\n", b"").split(b"<name>")[1:] == read.replace(b"\n", b"").split(b"<name>")[1:]
    assert Cluster.objects.get(pk=ovirt_estate.prod.pk).version == version
    assert AuditEntry.objects.count() == audit


def test_an_update_names_only_what_changes(ovirt, ovirt_estate):
    ovirt_estate.prod.description = "Production"
    ovirt_estate.prod.save()

    response = ovirt.put(
        f"/clusters/{ovirt_estate.prod.pk}",
        "<cluster><error_handling><on_error>migrate_highly_available</on_error></error_handling></cluster>",
    )

    assert xml(response).findtext("error_handling/on_error") == "migrate_highly_available"
    stored = Cluster.objects.get(pk=ovirt_estate.prod.pk)
    assert (stored.error_handling, stored.description) == ("migrate_highly_available", "Production")


def test_a_version_change_is_checked_against_the_policy_offer(ovirt, ovirt_estate):
    ovirt.put(
        f"/clusters/{ovirt_estate.prod.pk}",
        f'<cluster><migration><policy id="{VERY_LARGE_VMS_ID}"/></migration></cluster>',
    )

    response = ovirt.put(
        f"/clusters/{ovirt_estate.prod.pk}", "<cluster><version><major>4</major><minor>6</minor></version></cluster>"
    )

    _, detail = fault_of(response, 400)
    assert "Very large VMs needs parallel migrations, which compatibility version 4.6 does not support." in detail
    assert Cluster.objects.get(pk=ovirt_estate.prod.pk).compatibility_version_id == "4.7"


def test_control_characters_never_break_the_xml(ovirt, ovirt_estate):
    Cluster.objects.filter(pk=ovirt_estate.prod.pk).update(description="bad\x01byte & <tag>")

    cluster = xml(ovirt.get(f"/clusters/{ovirt_estate.prod.pk}"))

    assert cluster.findtext("description") == "bad\ufffdbyte & <tag>"


# Searches.


def test_search_by_glob_quoted_value_and_case(ovirt, ovirt_estate):
    VMFactory(host=ovirt_estate.hv_b, name="Web 1")
    VMFactory(host=ovirt_estate.hv_b, name="web-2")

    assert names(ovirt.get("/vms", search="name=web*")) == ["web-2"]
    assert names(ovirt.get("/vms", search="name=web*", case_sensitive="false")) == ["Web 1", "web-2"]
    assert names(ovirt.get("/vms", search='name="Web 1"')) == ["Web 1"]
    assert names(ovirt.get("/vms", search="Web*")) == ["Web 1"]
    assert names(ovirt.get("/vms", search="host=hv-b and name!=web-2")) == ["Web 1"]
    assert names(ovirt.get("/vms", search="cluster=prod", max="2")) == ["Web 1", "db-1"]
    assert names(ovirt.get("/vms", search=f"id={ovirt_estate.vm.pk}")) == ["db-1"]
    assert names(ovirt.get("/vms", search="id=not-an-id")) == []
    assert names(ovirt.get("/vms", search="name=w.b*")) == []  # a dot is a dot, not any character


def test_host_statuses_read_and_search_as_ovirts(ovirt, ovirt_estate):
    HostFactory(cluster=ovirt_estate.prod, name="hv-lost", status=HostStatus.UNKNOWN)
    HostFactory(cluster=ovirt_estate.prod, name="hv-maint", status=HostStatus.MAINTENANCE)

    assert names(ovirt.get("/hosts", search="status=non_responsive")) == ["hv-lost"]
    assert names(ovirt.get("/hosts", search="status=maintenance")) == ["hv-maint"]
    assert names(ovirt.get("/hosts", search="status=installing")) == []
    statuses = {host.findtext("name"): host.findtext("status") for host in xml(ovirt.get("/hosts"))}
    assert statuses["hv-lost"] == "non_responsive"


def test_a_vm_with_a_queued_job_reads_and_searches_as_migrating(ovirt, ovirt_estate):
    other = VMFactory(host=ovirt_estate.hv_a, name="idle")
    JobFactory(vm=ovirt_estate.vm, destination_host=ovirt_estate.hv_b)

    assert xml(ovirt.get(f"/vms/{ovirt_estate.vm.pk}")).findtext("status") == "migrating"
    assert names(ovirt.get("/vms", search="status=migrating")) == ["db-1"]
    assert names(ovirt.get("/vms", search="status=up")) == [other.name]


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (JobState.QUEUED, "started"),
        (JobState.RUNNING, "started"),
        (JobState.SUCCEEDED, "finished"),
        (JobState.FAILED, "failed"),
        (JobState.CANCELLED, "aborted"),
    ],
)
def test_job_statuses_read_and_search_as_ovirts(ovirt, ovirt_estate, state, status):
    from django.utils import timezone

    ended = state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    job = JobFactory(
        vm=ovirt_estate.vm,
        destination_host=ovirt_estate.hv_b,
        state=state,
        progress=100 if state == JobState.SUCCEEDED else 0,
        finished_at=timezone.now() if ended else None,
        correlation_id="corr-1",
    )

    item = xml(ovirt.get(f"/jobs/{job.pk}"))
    assert item.findtext("status") == status
    assert (item.findtext("end_time") is not None) == ended
    assert [j.get("id") for j in xml(ovirt.get("/jobs", search=f"status={status}"))] == [str(job.pk)]
    assert [j.get("id") for j in xml(ovirt.get("/jobs", search="correlation_id=corr-1"))] == [str(job.pk)]
    assert list(xml(ovirt.get("/jobs", search="correlation_id=other"))) == []


# Actions.


def test_without_a_host_ferry_chooses_the_destination(ovirt, ovirt_estate):
    HostFactory(cluster=ovirt_estate.prod, name="hv-down", status=HostStatus.MAINTENANCE)

    action = xml(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", "<action/>"))

    assert action.find("host").get("id") == str(ovirt_estate.hv_b.pk)
    job = MigrationJob.objects.get()
    assert job.destination_host_id == ovirt_estate.hv_b.pk
    assert job.automatic and job.plan["decisions"][0]["code"] == "destination_chosen"  # a failure is rerun


def test_without_a_host_and_none_up_it_is_a_fault(ovirt, ovirt_estate):
    ovirt_estate.hv_b.status = HostStatus.MAINTENANCE
    ovirt_estate.hv_b.save()

    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", "<action/>"), 400)

    assert "No other host of cluster prod is up to receive db-1" in detail


def test_the_vms_own_cluster_and_force_are_accepted(ovirt, ovirt_estate):
    body = f'<action><cluster id="{ovirt_estate.prod.pk}"/><host><name>hv-b</name></host><force>true</force></action>'

    assert xml(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", body)).findtext("status") == "complete"


def test_a_host_id_and_another_hosts_name_is_a_fault(ovirt, ovirt_estate):
    body = f'<action><host id="{ovirt_estate.hv_b.pk}"><name>hv-a</name></host></action>'

    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", body), 400)

    assert "is named hv-b, not hv-a" in detail


def test_a_vm_that_is_not_up_cannot_be_migrated(ovirt, ovirt_estate):
    ovirt_estate.vm.status = "down"
    ovirt_estate.vm.save()

    _, detail = fault_of(
        ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", "<action><host><name>hv-b</name></host></action>"), 400
    )

    assert detail == "[Cannot migrate VM db-1. Only a running or paused VM can be migrated; db-1 is Down.]"


def test_cancel_without_a_migration_is_a_409(ovirt, ovirt_estate):
    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/cancelmigration"), 409)

    assert "it is not being migrated" in detail


# The MigrationPolicies option.


def test_the_option_lists_what_each_level_offers_in_the_engines_format(ovirt):
    option = xml(ovirt.get("/options/MigrationPolicies"))

    values = {
        value.findtext("version"): json.loads(value.findtext("value")) for value in option.iter("system_option_value")
    }
    assert "4.2" in values and "4.8" in values
    at_47 = {policy["name"]: policy for policy in values["4.7"]}
    very_large = at_47["Very large VMs"]
    assert very_large["id"] == {"uuid": str(VERY_LARGE_VMS_ID)}
    assert very_large["maxMigrations"] == 1 and very_large["zerocopy"] is True
    assert very_large["config"]["initialItems"] == [{"action": "setDowntime", "params": ["300"]}]
    assert very_large["config"]["convergenceItems"][0] == {
        "stallingLimit": 1,
        "convergenceItem": {"action": "setDowntime", "params": ["400"]},
    }
    assert "Legacy" not in at_47 and "Legacy" in {policy["name"] for policy in values["4.2"]}
    assert "Very large VMs" not in {policy["name"] for policy in values["4.6"]}


def test_an_unknown_option_or_version_is_a_404(ovirt):
    assert fault_of(ovirt.get("/options/SomethingElse"), 404)[1].startswith('[Ferry has no option "SomethingElse"')
    fault_of(ovirt.get("/options/MigrationPolicies", version="9.9"), 404)


def test_the_job_page_shows_the_correlation_id(ovirt, ovirt_estate, ovirt_admin, client):
    ovirt.post(
        f"/vms/{ovirt_estate.vm.pk}/migrate",
        "<action><host><name>hv-b</name></host></action>",
        correlation_id="ansible-7",
    )
    client.force_login(ovirt_admin)

    page = client.get(f"/migrations/{MigrationJob.objects.get().pk}/").content.decode()

    assert "Correlation id" in page and "ansible-7" in page
