"""VMs carry oVirt's priority (1 low, the default; 50 medium; 100 high), which orders an
evacuation's jobs: set through the API, the form and the admin, versioned and audited."""

import uuid

import pytest

from clusters.models import VM
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_the_api_reads_and_sets_it(api, estate):
    assert api.get(f"/api/vms/{estate.vm.pk}/").json()["priority"] == 1
    response = api.patch(f"/api/vms/{estate.vm.pk}/", {"priority": 100}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["priority"] == 100
    assert VM.objects.get(pk=estate.vm.pk).priority == 100
    entry = AuditEntry.objects.filter(object_id=str(estate.vm.pk), action="update").latest("pk")
    assert (entry.before, entry.after) == ({"priority": 1}, {"priority": 100})
    for bad_value in (7, 0, "high"):
        bad = api.patch(f"/api/vms/{estate.vm.pk}/", {"priority": bad_value}, format="json")
        assert bad.status_code == 400 and "priority" in bad.json(), bad_value
    assert VM.objects.get(pk=estate.vm.pk).priority == 100


def test_a_new_vm_is_low_unless_asked(api, estate):
    body = {"name": "web-9", "uuid": str(uuid.uuid4()), "host": str(estate.source.pk), "memory_mib": 1024, "vcpus": 1}
    assert api.post("/api/vms/", body, format="json").json()["priority"] == 1
    body |= {"name": "web-10", "uuid": str(uuid.uuid4()), "priority": 50}
    assert api.post("/api/vms/", body, format="json").json()["priority"] == 50


def test_the_form_sets_it_and_the_page_shows_it(admin_client, estate):
    from tests.pages.test_host_and_vm_pages import vm_post

    data = vm_post(estate, priority="100")
    assert admin_client.post("/vms/add/", data).status_code == 302
    vm = VM.objects.get(uuid=data["uuid"])
    assert vm.priority == 100
    assert 'id="priority">High' in admin_client.get(f"/vms/{vm.pk}/").content.decode()
