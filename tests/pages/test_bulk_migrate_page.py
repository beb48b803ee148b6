"""The VM list's "Migrate selected": a migration for each VM ticked, a message for each."""

import uuid

import pytest
from django.test import Client

from core.models import AuditEntry
from migrations_app.models import MigrationJob
from tests.factories import VMFactory
from tests.pages.test_permissions import operator_client
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db

URL = "/vms/migrate/"


def test_the_list_offers_checkboxes_and_the_action_to_those_who_may_migrate(admin_client, reader_client, world):
    page = admin_client.get("/vms/").content.decode()
    assert 'action="/vms/migrate/"' in page and "csrfmiddlewaretoken" in page
    assert f'name="vms" value="{world.vm.pk}"' in page and "Migrate selected" in page
    assert '<option value="">Select automatically (Ferry chooses)</option>' in page
    page = reader_client.get("/vms/").content.decode()
    assert 'name="vms"' not in page and "Migrate selected" not in page


def test_each_vm_ticked_gets_its_job_or_its_reason(admin_client, world, django_capture_on_commit_callbacks):
    other = VMFactory(host=world.source, name="db-2")
    busy = VMFactory(host=world.source, name="db-3")
    make_job(busy, world.destination)
    ticked = [str(world.vm.pk), str(busy.pk), str(uuid.uuid4()), str(other.pk)]
    with django_capture_on_commit_callbacks():
        response = admin_client.post(URL, {"vms": ticked}, follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/vms/"
    for vm in (world.vm, other):
        job = MigrationJob.objects.get(vm=vm, state="queued")
        assert job.automatic and job.destination_host == world.destination
        assert f"{vm.name}: queued to kvm-b." in page and f"/migrations/{job.pk}/" in page
        assert AuditEntry.objects.filter(action="migrate", object_id=str(job.pk), actor="admin").exists()
    assert "db-3: db-3 already has an active migration." in page
    assert "No such VM." in page


def test_a_named_destination_is_refused_per_vm(admin_client, world, django_capture_on_commit_callbacks):
    on_destination = VMFactory(host=world.destination, name="web-9")
    with django_capture_on_commit_callbacks():
        response = admin_client.post(
            URL,
            {"vms": [str(world.vm.pk), str(on_destination.pk)], "destination_host": world.destination.pk},
            follow=True,
        )
    page = response.content.decode()
    assert MigrationJob.objects.get(vm=world.vm, state="queued").automatic is False
    assert "web-9: The destination is the VM&#x27;s current host." in page
    assert not MigrationJob.objects.filter(vm=on_destination).exists()


def test_nothing_ticked_or_junk_starts_nothing(admin_client, world):
    before = MigrationJob.objects.count()
    page = admin_client.post(URL, {}, follow=True).content.decode()
    assert "Select the VMs to migrate." in page
    page = admin_client.post(URL, {"vms": ["junk"]}, follow=True).content.decode()
    assert "An unknown VM was selected." in page
    assert MigrationJob.objects.count() == before


def test_a_read_only_user_is_refused_and_a_post_without_csrf_too(reader_client, admin_user, world):
    assert reader_client.post(URL, {"vms": [str(world.vm.pk)]}).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(URL, {"vms": [str(world.vm.pk)]}).status_code == 403
    assert not MigrationJob.objects.filter(state="queued").exists()


def test_an_operator_may_migrate_selected(client, world, django_capture_on_commit_callbacks):
    operator = operator_client(client)
    assert "Migrate selected" in operator.get("/vms/").content.decode()
    with django_capture_on_commit_callbacks():
        operator.post(URL, {"vms": [str(world.vm.pk)]})
    assert MigrationJob.objects.get(vm=world.vm, state="queued").created_by.username == "op"
