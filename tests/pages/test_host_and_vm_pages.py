"""Host and VM pages: capabilities, maintenance/activate/refresh, and the VM form."""

import uuid

import pytest
from kombu.exceptions import OperationalError

from clusters.models import VM, Host
from clusters.services import vm_update
from core.models import AuditEntry
from policies.models import VERY_LARGE_VMS_ID
from tests import broker
from tests.factories import ClusterFactory, HostFactory

pytestmark = pytest.mark.django_db


def test_the_host_page_shows_the_capabilities(admin_client, world):
    page = admin_client.get(f"/hosts/{world.source.pk}/").content.decode()
    for text in ("9.0.0", "7.2.0", "Zero-copy migrations", "Supported", "100000 Mbit/s", "256.0 GiB"):
        assert text in page


def test_a_host_without_a_report_says_so(admin_client):
    host = HostFactory(capabilities={})
    page = admin_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "Not reported" in page and "Never: the host's agent has not reported yet." in page


def test_maintenance_and_activate(admin_client, world):
    url = f"/hosts/{world.source.pk}/"
    page = admin_client.get(url).content.decode()
    assert "maintenance/" in page and "activate/" not in page
    response = admin_client.post(f"{url}maintenance/", follow=True)
    # Its VM db-1 is moved first (issue 15): preparing until the migration ends.
    assert "Host kvm-a is preparing for maintenance: its VMs are moved first." in response.content.decode()
    world.source.refresh_from_db()
    assert world.source.status == "preparing_for_maintenance"
    assert "activate/" in response.content.decode()
    response = admin_client.post(f"{url}activate/", follow=True)
    world.source.refresh_from_db()
    # Up only once its agent reports (tests/models/test_host_truth.py); the page says so meanwhile.
    assert world.source.status == "activating"
    assert "Host kvm-a is activating: it is up once its agent reports." in response.content.decode()
    assert "Waiting for the host&#x27;s agent to report." in response.content.decode()


# Without a surrounding test transaction, the task is sent at the service's commit, inside the view.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_refresh_asks_the_host_to_report(admin_client, world, settings):
    settings.FERRY_HOST_QUEUES = True
    response = admin_client.post(f"/hosts/{world.source.pk}/refresh/", follow=True)
    host_id = str(world.source.pk)
    assert sorted(broker.take(f"host.{host_id}"), key=str) == [
        broker.Sent(task="ferry.refresh_capabilities", args=[host_id], kwargs={}),
        broker.Sent(task="ferry.sync_inventory", args=[host_id], kwargs={}),
    ]
    assert "Asked kvm-a to report its capabilities" in response.content.decode()
    assert AuditEntry.objects.filter(object_id=host_id, action="refresh", actor="admin").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_refresh_when_the_broker_is_down_says_so(admin_client, world, caplog):
    with broker.unreachable():
        response = admin_client.post(f"/hosts/{world.source.pk}/refresh/", follow=True)
    assert response.status_code == 200
    assert "The task queue cannot be reached" in response.content.decode()
    assert "Asked kvm-a" not in response.content.decode()
    assert any(isinstance(record.exc_info[1], OperationalError) for record in caplog.records if record.exc_info)


def test_host_actions_are_post_only(admin_client, world):
    for action in ("refresh", "activate"):
        assert admin_client.get(f"/hosts/{world.source.pk}/{action}/").status_code == 405
    # GET maintenance/ only shows what would move, to confirm; it changes nothing.
    assert admin_client.get(f"/hosts/{world.source.pk}/maintenance/").status_code == 200
    world.source.refresh_from_db()
    assert world.source.status == "up"
    assert admin_client.put(f"/hosts/{world.source.pk}/maintenance/").status_code == 405


def test_adding_a_host_prefilled_from_its_cluster(admin_client, world):
    page = admin_client.get(f"/hosts/add/?cluster={world.cluster.pk}").content.decode()
    assert f'value="{world.cluster.pk}" selected' in page
    assert admin_client.get("/hosts/add/?cluster=junk").status_code == 200
    data = {"name": "kvm-c", "cluster": str(world.cluster.pk), "address": "10.9.9.9", "libvirt_uri": "qemu:///system"}
    assert admin_client.post("/hosts/add/", data).status_code == 302
    assert Host.objects.get(name="kvm-c").status == "unknown"


def test_a_bad_host_address_is_refused_on_its_field(admin_client, world):
    data = {"name": "bad", "cluster": str(world.cluster.pk), "address": "not an address!", "libvirt_uri": "nope"}
    response = admin_client.post("/hosts/add/", data)
    assert {"address", "libvirt_uri"} <= set(response.context["form"].errors)


def vm_post(world, **values):
    data = {
        "name": "web-1",
        "uuid": str(uuid.uuid4()),
        "host": str(world.source.pk),
        "memory_mib": "2048",
        "vcpus": "2",
        "status": "up",
        "migration_policy": "",
        "parallel_migrations_policy": "inherit",
        "custom_parallel_migrations": "",
        "migration_encrypted": "inherit",
    }
    return data | values


def test_adding_and_editing_a_vm(admin_client, world):
    assert admin_client.post("/vms/add/", vm_post(world)).status_code == 302
    vm = VM.objects.get(name="web-1")
    assert vm.migration_policy is None
    response = admin_client.post(f"/vms/{vm.pk}/edit/", vm_post(world, uuid=str(vm.uuid), vcpus="4", version="1"))
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.vcpus == 4 and vm.version == 2


def test_a_vm_policy_not_offered_at_its_cluster_level_is_refused(admin_client):
    host = HostFactory(cluster=ClusterFactory(compatibility_version_id="4.6"))
    world_like = type("W", (), {"source": host})
    response = admin_client.post("/vms/add/", vm_post(world_like, migration_policy=str(VERY_LARGE_VMS_ID)))
    assert "needs parallel migrations" in response.content.decode()
    assert not VM.objects.filter(name="web-1").exists()


def test_a_stale_vm_edit_is_refused(admin_client, world, actor):
    vm_update(actor=actor, vm=world.vm, data={"vcpus": 32})
    response = admin_client.post(
        f"/vms/{world.vm.pk}/edit/",
        vm_post(world, name="db-1", uuid=str(world.vm.uuid), memory_mib="65536", vcpus="8", version="1"),
    )
    assert response.status_code == 200
    assert [c.label for c in response.context["stale_changes"]] == ["vCPUs"]
    world.vm.refresh_from_db()
    assert world.vm.vcpus == 32


def test_a_vm_with_junk_values(admin_client, world):
    response = admin_client.post(
        "/vms/add/", vm_post(world, uuid="nope", host="zz", memory_mib="-1", vcpus="lots", status="flying")
    )
    assert response.status_code == 200
    assert {"uuid", "host", "memory_mib", "vcpus", "status"} <= set(response.context["form"].errors)


def test_deleting_a_vm(admin_client, world):
    response = admin_client.post(f"/vms/{world.vm.pk}/delete/")
    assert response.status_code == 302
    assert not VM.objects.filter(pk=world.vm.pk).exists()
