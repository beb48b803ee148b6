"""A paused VM migrates, as in oVirt, without post-copy (issue 15)."""

import pytest

from clusters.models import VM
from migrations_app.models import MigrationJob
from policies.models import POST_COPY_ID

pytestmark = pytest.mark.django_db


def test_a_paused_vm_migrates_without_post_copy(api, estate):
    VM.objects.filter(pk=estate.vm.pk).update(status="paused", migration_policy_id=POST_COPY_ID)
    body = {"destination_host": str(estate.destination.pk)}
    plan = api.get(f"/api/vms/{estate.vm.pk}/migration-plan/", {"destination_host": str(estate.destination.pk)})
    assert plan.status_code == 200, plan.content
    plan = plan.json()
    codes = [decision["code"] for decision in plan["decisions"]]
    assert "postcopy_removed_paused" in codes, codes
    assert plan["post_copy"] is False and "VIR_MIGRATE_POSTCOPY" not in plan["libvirt"]["flags"]
    response = api.post(f"/api/vms/{estate.vm.pk}/migrate/", body, format="json")
    assert response.status_code == 202, response.content
    job = MigrationJob.objects.get(pk=response.json()["id"])
    assert job.plan["post_copy"] is False


def test_the_same_vm_running_keeps_its_post_copy(api, estate):
    VM.objects.filter(pk=estate.vm.pk).update(migration_policy_id=POST_COPY_ID)
    plan = api.get(f"/api/vms/{estate.vm.pk}/migration-plan/", {"destination_host": str(estate.destination.pk)}).json()
    assert plan["post_copy"] is True
    assert "postcopy_removed_paused" not in [decision["code"] for decision in plan["decisions"]]


def test_a_vm_that_is_down_still_cannot_be_migrated(api, estate):
    VM.objects.filter(pk=estate.vm.pk).update(status="down")
    response = api.post(f"/api/vms/{estate.vm.pk}/migrate/", {"destination_host": str(estate.destination.pk)})
    assert response.status_code == 400
    assert "Only a running or paused VM can be migrated" in str(response.json())


def test_a_paused_vm_stays_paused_on_its_new_host(estate):
    from core.audit import Actor
    from migrations_app.agent_services import job_claim, job_finish
    from migrations_app.services import migration_start

    VM.objects.filter(pk=estate.vm.pk).update(status="paused")
    vm = VM.objects.select_related("host__cluster").get(pk=estate.vm.pk)
    job = migration_start(actor=Actor.task("test"), vm=vm, destination=estate.destination)
    assert job_claim(estate.source, str(job.pk))["claim"] == "started"
    assert VM.objects.get(pk=vm.pk).status == "migrating"
    answer = job_finish(
        estate.source, str(job.pk), {"result": {"ok": True}, "source_state": None, "destination_state": "paused"}
    )
    assert answer == {"state": "succeeded"}
    vm.refresh_from_db()
    assert (vm.host_id, vm.status) == (estate.destination.pk, "paused")


def test_without_a_destination_ferry_chooses_one_with_room(api, estate):
    from clusters.models import Host

    response = api.post(f"/api/vms/{estate.vm.pk}/migrate/", {}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["destination_host"] == str(estate.destination.pk)
    MigrationJob.objects.filter(pk=response.json()["id"]).update(state="cancelled", finished_at="2026-01-01T00:00Z")
    Host.objects.filter(pk=estate.destination.pk).update(status="non_operational")
    response = api.post(f"/api/vms/{estate.vm.pk}/migrate/", {}, format="json")
    assert response.status_code == 400
    assert "No host can take db-1: hv-b is non operational" in response.json()["destination_host"][0]
