"""/audit/: the audit trail for everyone who may view it, filtered, readable and linked."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from core.models import AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def record(obj, action="update", actor="alice", before=None, after=None, at=None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj),
        before=before,
        after=after,
        at=at or timezone.now(),
    )


def test_a_reader_sees_changes_field_by_field_with_links_and_time_zones(reader_client, world):
    record(
        world.source,
        before={"capabilities": {"zerocopy_migrations": False, "qemu_version": "8.2.0"}},
        after={"capabilities": {"zerocopy_migrations": True, "qemu_version": "8.2.0"}},
        actor="ferry.refresh_capabilities",
    )
    record(world.cluster, before={"migration_encrypted": "inherit"}, after={"migration_encrypted": "true"})
    page = reader_client.get("/audit/").content.decode()
    assert "Capabilities · zerocopy migrations: No → <strong>Yes</strong>" in page
    assert "qemu version" not in page  # unchanged keys are not listed
    assert "changed → " not in page
    assert f'<a href="/hosts/{world.source.pk}/">kvm-a</a>' in page
    assert f'<a href="/clusters/{world.cluster.pk}/">prod</a>' in page
    assert "Migration encrypted: Inherit → <strong>On</strong>" in page
    assert " UTC</time>" in page
    assert '<a href="/audit/" aria-current="page">Audit</a>' in page


def test_filters_by_object_type_actor_action_and_time(reader_client, world):
    record(world.cluster, actor="bob", action="create", at=timezone.now() - datetime.timedelta(days=3))
    record(world.source, actor="alice", action="maintenance")
    record(world.vm, actor="alice", action="update")

    page = reader_client.get("/audit/", {"object_type": "host"}).content.decode()
    assert "maintenance" in page and "db-1" not in page
    page = reader_client.get("/audit/", {"actor": "bob"}).content.decode()
    assert ">create<" in page and ">maintenance<" not in page
    page = reader_client.get("/audit/", {"action": "maintenance"}).content.decode()
    assert "kvm-a" in page and ">create<" not in page
    since = (timezone.now() - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = reader_client.get("/audit/", {"at_after": since, "actor": "bob"}).content.decode()
    assert "No change matches these filters." in page


def test_the_audit_page_needs_view_permission(world):
    client = Client()
    assert client.get("/audit/").status_code == 302
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/audit/").status_code == 403
