"""Every change made from a page is in the audit log: who, what, and the values before and after."""

import pytest

from core.models import AuditEntry
from tests.factories import ClusterFactory, PolicyFactory
from tests.pages.test_host_and_vm_pages import vm_post
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db


def entry(action: str, obj) -> AuditEntry:
    return AuditEntry.objects.get(action=action, object_id=str(obj.pk))


def test_maintenance_and_activate_from_the_host_page_are_audited(admin_client, world):
    admin_client.post(f"/hosts/{world.source.pk}/maintenance/")
    admin_client.post(f"/hosts/{world.source.pk}/activate/")

    maintenance, activate = entry("maintenance", world.source), entry("activate", world.source)
    assert (maintenance.actor, maintenance.object_type) == ("admin", "host")
    # Its VM is moved first (issue 15): preparing, then activating cancels that evacuation.
    assert (maintenance.before, maintenance.after) == ({"status": "up"}, {"status": "preparing_for_maintenance"})
    assert entry("evacuate", world.source.evacuations.get()).actor == "admin"
    assert (activate.actor, activate.before["status"], activate.after["status"]) == (
        "admin",
        "preparing_for_maintenance",
        "activating",
    )
    assert activate.after["status_reason"]["check"] == "activation"


def test_a_vm_added_edited_and_deleted_from_its_pages_is_audited(admin_client, world):
    admin_client.post("/vms/add/", vm_post(world))
    created = AuditEntry.objects.get(action="create", object_type="vm")
    assert (created.actor, created.before, created.after["name"]) == ("admin", None, "web-1")

    vm_id = created.object_id
    admin_client.post(f"/vms/{vm_id}/edit/", vm_post(world, uuid=created.after["uuid"], vcpus="4", version="1"))
    updated = AuditEntry.objects.get(action="update", object_id=vm_id)
    assert (updated.actor, updated.before, updated.after) == ("admin", {"vcpus": 2}, {"vcpus": 4})

    admin_client.post(f"/vms/{vm_id}/delete/")
    deleted = AuditEntry.objects.get(action="delete", object_id=vm_id)
    assert (deleted.actor, deleted.before["name"], deleted.after) == ("admin", "web-1", None)


def test_cancelling_a_job_from_its_page_is_audited(admin_client, world):
    job = make_job(world.vm, world.destination)
    admin_client.post(f"/migrations/{job.pk}/cancel/")
    cancel = entry("cancel", job)
    assert (cancel.actor, cancel.object_type) == ("admin", "migrationjob")
    assert (cancel.before["state"], cancel.after["state"]) == ("queued", "cancelled")


def test_deleting_a_cluster_and_a_policy_from_their_pages_is_audited(admin_client):
    cluster, policy = ClusterFactory(name="empty"), PolicyFactory(name="Unused")
    admin_client.post(f"/clusters/{cluster.pk}/delete/", {"version": "1"})
    admin_client.post(f"/policies/{policy.pk}/delete/", {"version": "1"})
    assert (entry("delete", cluster).actor, entry("delete", cluster).before["name"]) == ("admin", "empty")
    assert (entry("delete", policy).actor, entry("delete", policy).before["name"]) == ("admin", "Unused")
