"""POST /api/vms/migrate/: a migration for each VM listed, each answered on its own."""

import uuid

import pytest

from core.models import AuditEntry
from migrations_app.models import JobState, MigrationJob
from tests.factories import VMFactory

pytestmark = pytest.mark.django_db

URL = "/api/vms/migrate/"


def test_each_vm_gets_its_job_or_its_reason_and_one_refusal_does_not_stop_the_others(
    api, estate, django_capture_on_commit_callbacks
):
    other = VMFactory(host=estate.source, name="db-2")
    missing = uuid.uuid4()
    body = {
        "vms": [str(estate.vm.pk), str(estate.job.vm_id), str(missing), str(estate.spare_vm.pk), str(other.pk)],
        "destination_host": str(estate.destination.pk),
    }
    with django_capture_on_commit_callbacks():
        response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    results = response.json()["results"]
    assert [r["vm"] for r in results] == body["vms"]
    assert [r["status"] for r in results] == [202, 409, 404, 400, 202]
    queued = {r["vm"]: r["job"]["id"] for r in results if r["status"] == 202}
    for vm_id, job_id in queued.items():
        job = MigrationJob.objects.get(pk=job_id)
        assert (str(job.vm_id), job.destination_host, job.state, job.automatic) == (
            vm_id,
            estate.destination,
            JobState.QUEUED,
            False,
        )
        assert AuditEntry.objects.filter(action="migrate", object_id=job_id).exists()
    assert "already has an active migration" in results[1]["reasons"]["vm"][0]
    assert results[2]["reasons"] == {"vm": ["No such VM."]} and results[2]["job"] is None
    assert "current host" in results[3]["reasons"]["destination_host"][0]


def test_without_a_destination_ferry_chooses_for_each_vm(api, estate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = api.post(URL, {"vms": [str(estate.vm.pk), str(estate.spare_vm.pk)]}, format="json")
    assert response.status_code == 202
    first, second = response.json()["results"]
    assert first["status"] == 202 and first["job"]["destination_host"] == str(estate.destination.pk)
    assert first["job"]["automatic"] and first["job"]["plan"]["decisions"][0]["code"] == "destination_chosen"
    assert second["status"] == 202 and second["job"]["destination_host"] == str(estate.source.pk)


@pytest.mark.parametrize("body", [{}, {"vms": []}, {"vms": ["junk"]}, {"vms": "x"}])
def test_a_malformed_request_is_a_400_and_starts_nothing(api, estate, body):
    before = MigrationJob.objects.count()
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert MigrationJob.objects.count() == before
