"""The Migrate form with its plan preview, and the migration job pages."""

import pytest

from migrations_app.models import MigrationJob
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory, HostFactory
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db


def test_the_migrate_page_offers_automatic_first_and_previews_the_host_ferry_would_choose(admin_client, world):
    HostFactory(name="kvm-c", cluster=world.cluster, status="maintenance")
    page = admin_client.get(f"/vms/{world.vm.pk}/migrate/").content.decode()
    address = world.destination.address
    options = page.split('name="destination_host"')[1].split("</select>")[0]
    assert options.index('<option value="" selected>Select automatically (Ferry chooses)</option>') < options.index(
        f'<option value="{world.destination.pk}">kvm-b (Up, {address})</option>'
    )
    assert 'id="automatic-choice"' in page and "Ferry would choose" in page
    assert "destination_chosen" in page and "Ferry chose kvm-b with" in page
    assert "Passed over: kvm-c is maintenance." in page
    for text in ("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", f"migrate_uri = tcp://{address}", "Confirm migration"):
        assert text in page


def test_the_automatic_preview_says_why_no_host_can_take_the_vm(admin_client, world):
    world.destination.status = "maintenance"
    world.destination.save()
    for url in (f"/vms/{world.vm.pk}/migrate/", f"/vms/{world.vm.pk}/migrate/plan/"):
        response = admin_client.get(url, {"destination_host": ""})
        page = response.content.decode()
        assert response.status_code == 200
        assert 'id="no-destination"' in page and "No host can take db-1: kvm-b is maintenance." in page
        assert "VIR_MIGRATE_LIVE" not in page


def test_confirming_the_automatic_choice_records_it_on_the_job(admin_client, world):
    response = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": ""})
    job = MigrationJob.objects.get(state="queued")
    assert response.status_code == 302 and response["Location"] == f"/migrations/{job.pk}/"
    assert job.destination_host == world.destination and job.automatic and job.rerun_of is None
    chosen = job.plan["decisions"][0]
    assert chosen["code"] == "destination_chosen" and chosen["message"].startswith("Ferry chose kvm-b with ")
    assert "destination_chosen" in admin_client.get(response["Location"]).content.decode()


def test_confirming_the_automatic_choice_without_a_host_writes_nothing(admin_client, world):
    world.destination.status = "non_operational"
    world.destination.save()
    response = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": ""})
    assert response.status_code == 200
    assert "No host can take db-1: kvm-b is non operational." in response.content.decode()
    assert not MigrationJob.objects.filter(state="queued").exists()


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


def test_the_preview_with_a_junk_destination(admin_client, world):
    for value in ("junk", "00000000-0000-0000-0000-000000000009"):
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
