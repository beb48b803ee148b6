"""The Migrate form with its plan preview, and the migration job pages."""

import pytest

from migrations_app.models import MigrationJob
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory, HostFactory
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db


def test_the_migrate_page_previews_the_plan_for_the_first_host_that_is_up(admin_client, world):
    page = admin_client.get(f"/vms/{world.vm.pk}/migrate/").content.decode()
    address = world.destination.address
    assert f'<option value="{world.destination.pk}" selected>kvm-b (Up, {address})</option>' in page
    for text in ("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", f"migrate_uri = tcp://{address}", "Confirm migration"):
        assert text in page


def test_the_preview_fragment_explains_each_decision(admin_client, world):
    world.cluster.migration_policy_id = VERY_LARGE_VMS_ID
    world.cluster.save()
    fragment = admin_client.get(
        f"/vms/{world.vm.pk}/migrate/plan/", {"destination_host": world.destination.pk}
    ).content.decode()
    assert "<html" not in fragment
    assert "VIR_MIGRATE_ZEROCOPY" in fragment and "VIR_MIGRATE_PARALLEL" in fragment
    assert "parallel_enforced" in fragment and "Zero-copy needs parallel connections" in fragment
    assert "parallel.connections = 9" in fragment  # 100 Gbit/s: one per 10 Gbit/s, below 16 vCPUs


def test_the_preview_says_which_time_limits_the_source_agent_holds_the_migration_to(admin_client, world):
    url = f"/vms/{world.vm.pk}/migrate/plan/"
    assert (
        "the source host's agent has not reported its limits"
        in admin_client.get(url, {"destination_host": world.destination.pk}).content.decode()
    )
    world.source.capabilities = {**world.source.capabilities, "migration_pulse_s": 10.0, "migration_stall_s": 600.0}
    world.source.save()
    fragment = admin_client.get(url, {"destination_host": world.destination.pk}).content.decode()
    assert "No limit on the whole migration: it ends by its schedule, at most one step every 10 s" in fragment
    assert "or is aborted after 600 s without progress" in fragment


def test_the_preview_with_no_or_a_junk_destination(admin_client, world):
    for value in ("", "junk", "00000000-0000-0000-0000-000000000009"):
        response = admin_client.get(f"/vms/{world.vm.pk}/migrate/plan/", {"destination_host": value})
        assert response.status_code == 200
        assert "Choose a destination host" in response.content.decode()


def test_confirming_starts_a_queued_job_and_shows_its_page(admin_client, world):
    response = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": world.destination.pk})
    job = MigrationJob.objects.get(state="queued")
    assert response.status_code == 302 and response["Location"] == f"/migrations/{job.pk}/"
    assert (job.vm, job.destination_host, job.created_by.username) == (world.vm, world.destination, "admin")
    page = admin_client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'hx-trigger="every 1s"' in page and 'role="progressbar"' in page
    assert "Cancel migration" in page


def test_a_second_migration_of_the_same_vm_is_refused_with_a_link(admin_client, world):
    active = make_job(world.vm, world.destination)
    page = admin_client.get(f"/vms/{world.vm.pk}/migrate/").content.decode()
    assert "already has an active migration" in page
    response = admin_client.post(
        f"/vms/{world.vm.pk}/migrate/", {"destination_host": world.destination.pk}, follow=True
    )
    page = response.content.decode()
    assert "db-1 already has an active migration." in page and f"/migrations/{active.pk}/" in page
    assert MigrationJob.objects.filter(state="queued").count() == 1


def test_bad_destinations_are_refused_on_the_field(admin_client, world):
    elsewhere = HostFactory(cluster=ClusterFactory())
    down = HostFactory(cluster=world.cluster, status="maintenance")
    for destination, message in (
        (world.source.pk, "The destination is the VM&#x27;s current host."),
        (elsewhere.pk, "The destination host is in another cluster."),
        (down.pk, "is Maintenance"),
        ("junk", "Select a valid choice"),
        ("", "This field is required"),
    ):
        response = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": destination})
        assert response.status_code == 200, destination
        assert message in response.content.decode(), destination
    assert not MigrationJob.objects.filter(state="queued").exists()


def test_a_vm_that_is_not_up_cannot_be_migrated(admin_client, world):
    world.vm.status = "down"
    world.vm.save()
    response = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": world.destination.pk})
    assert "Only a running or paused VM can be migrated" in response.content.decode()


def test_the_status_fragment_polls_while_active_and_stops_when_done(admin_client, world):
    job = make_job(world.vm, world.destination, state="running", progress=42, stats={"data_remaining": 3 * 2**30})
    response = admin_client.get(f"/migrations/{job.pk}/status/")
    page = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in page
    assert "42%" in page and "3.0 GiB" in page
    job.state, job.progress, job.stats = "succeeded", 100, {"data_remaining": 0, "downtime_ms": 87}
    job.finished_at = job.created_at
    job.save()
    response = admin_client.get(f"/migrations/{job.pk}/status/")
    assert response.status_code == 286
    page = response.content.decode()
    assert "hx-trigger" not in page and "Succeeded" in page and "87 ms" in page


def test_cancelling_a_queued_job(admin_client, world):
    job = make_job(world.vm, world.destination)
    response = admin_client.post(f"/migrations/{job.pk}/cancel/", follow=True)
    assert "Migration cancelled." in response.content.decode()
    job.refresh_from_db()
    assert job.state == "cancelled"
    again = admin_client.post(f"/migrations/{job.pk}/cancel/", follow=True)
    assert "already ended" in again.content.decode()


def test_the_job_list_filters_by_state(admin_client, world):
    make_job(world.vm, world.destination, state="running")
    page = admin_client.get("/migrations/?state=running").content.decode()
    assert "Running" in page and "Failed" not in page.split('id="results"')[1]
