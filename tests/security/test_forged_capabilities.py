"""Capabilities come only from the host's own agent: no user, Operator or admin, can report them
through the API, the pages or admin, and a forged report cannot bring a dead host back up."""

import pytest

from clusters.models import Host, HostStatus
from core.models import AuditEntry
from tests.api.conftest import token_client, user_in_role
from tests.factories import ZEROCOPY_HOST, HostFactory

pytestmark = pytest.mark.django_db

FORGED = dict(ZEROCOPY_HOST, zerocopy_migrations=True, parallel_migrations=True)


@pytest.fixture
def dead_host(db):
    return HostFactory(status=HostStatus.NON_OPERATIONAL, capabilities=dict(ZEROCOPY_HOST, zerocopy_migrations=False))


def unchanged(host: Host, audit_before: int) -> None:
    stored = Host.objects.get(pk=host.pk)
    assert stored.status == HostStatus.NON_OPERATIONAL
    assert stored.capabilities == host.capabilities
    assert stored.capabilities_updated_at == host.capabilities_updated_at
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize("role", ["operator", "editor", "superuser"])
@pytest.mark.parametrize("method", ["put", "post", "patch"])
@pytest.mark.parametrize("body", [FORGED, {}], ids=["full", "empty"])
def test_nobody_reports_capabilities_through_the_api(dead_host, role, method, body):
    user = user_in_role("editor" if role == "superuser" else role)
    if role == "superuser":
        user.is_superuser = True
        user.save()
    audit_before = AuditEntry.objects.count()

    response = getattr(token_client(user), method)(f"/api/hosts/{dead_host.pk}/capabilities/", body, format="json")

    assert response.status_code in (404, 405), response.content
    unchanged(dead_host, audit_before)


def test_capabilities_and_their_time_are_read_only_in_a_host_edit(api, dead_host):
    audit_before = AuditEntry.objects.count()
    response = api.patch(
        f"/api/hosts/{dead_host.pk}/",
        {"capabilities": FORGED, "capabilities_updated_at": "2030-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["capabilities"]["zerocopy_migrations"] is False
    unchanged(dead_host, audit_before)


def test_admin_shows_capabilities_read_only(admin_client, dead_host):
    page = admin_client.get(f"/admin/clusters/host/{dead_host.pk}/change/")
    assert "capabilities" not in page.context["adminform"].form.fields
