"""The impact preview on the cluster form: an htmx fragment fed by the form's values."""

import pytest
from django.test import Client

from policies.models import MigrationPolicy
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def very_large_vms() -> MigrationPolicy:
    return MigrationPolicy.objects.get(name="Very large VMs")


def test_the_edit_form_loads_the_preview_with_its_own_values(admin_client, world):
    page = admin_client.get(f"/clusters/{world.cluster.pk}/edit/").content.decode()
    assert f'hx-get="/clusters/{world.cluster.pk}/impact/"' in page
    assert 'hx-include="#cluster-form"' in page
    assert "<script>" not in page.split("<body", 1)[1]


def test_a_reader_sees_the_groups_with_their_vms_a_click_away(reader_client, world):
    fragment = reader_client.get(
        f"/clusters/{world.cluster.pk}/impact/",
        # The form sends every input; those that are not migration settings are ignored.
        {"name": "prod", "version": "1", "migration_policy": str(very_large_vms().pk), "migration_encrypted": "false"},
    ).content.decode()
    assert "<html" not in fragment
    assert "With <strong>Very large VMs</strong>" in fragment
    assert "1 VM would use zero-copy" in fragment
    assert f'href="/vms/{world.vm.pk}/"' in fragment and ">db-1<" in fragment


def test_values_the_form_would_refuse_ask_for_a_correction(reader_client, world):
    fragment = reader_client.get(
        f"/clusters/{world.cluster.pk}/impact/",
        {"compatibility_version": "4.6", "migration_policy": str(very_large_vms().pk)},
    ).content.decode()
    assert "Correct the form" in fragment and "zero-copy" not in fragment


def test_the_preview_needs_view_permission(world):
    client = Client()
    assert client.get(f"/clusters/{world.cluster.pk}/impact/").status_code == 302
    client.force_login(UserFactory(username="nobody"))
    assert client.get(f"/clusters/{world.cluster.pk}/impact/").status_code == 403
