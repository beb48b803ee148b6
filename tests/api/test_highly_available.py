"""VMs carry a highly_available flag (issue 15): false by default, set through the API, the form
and the admin, versioned and audited like any other field."""

import uuid

import pytest

from clusters.models import VM
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_the_api_reads_and_sets_it(api, estate):
    assert api.get(f"/api/vms/{estate.vm.pk}/").json()["highly_available"] is False
    response = api.patch(f"/api/vms/{estate.vm.pk}/", {"highly_available": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["highly_available"] is True
    assert VM.objects.get(pk=estate.vm.pk).highly_available is True
    entry = AuditEntry.objects.filter(object_id=str(estate.vm.pk), action="update").latest("pk")
    assert (entry.before, entry.after) == ({"highly_available": False}, {"highly_available": True})
    listed = api.get("/api/vms/", {"highly_available": "true"})
    assert [vm["name"] for vm in listed.json()["results"]] == ["db-1"], listed.content
    bad = api.patch(f"/api/vms/{estate.vm.pk}/", {"highly_available": "maybe"}, format="json")
    assert bad.status_code == 400 and "highly_available" in bad.json()


def test_a_new_vm_is_not_highly_available_unless_asked(api, estate):
    body = {"name": "web-9", "uuid": str(uuid.uuid4()), "host": str(estate.source.pk), "memory_mib": 1024, "vcpus": 1}
    assert api.post("/api/vms/", body, format="json").json()["highly_available"] is False
    body |= {"name": "web-10", "uuid": str(uuid.uuid4()), "highly_available": True}
    assert api.post("/api/vms/", body, format="json").json()["highly_available"] is True


def test_the_form_sets_it(admin_client, estate):
    from tests.pages.test_host_and_vm_pages import vm_post

    data = vm_post(estate, highly_available="on")
    assert admin_client.post("/vms/add/", data).status_code == 302
    vm = VM.objects.get(uuid=data["uuid"])
    assert vm.highly_available is True
    assert 'id="highly-available"><span class="badge yes">Yes' in admin_client.get(f"/vms/{vm.pk}/").content.decode()
