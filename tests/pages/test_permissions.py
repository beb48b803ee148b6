"""Buttons a user may not use are not shown, and the server refuses them anyway."""

import pytest
from django.contrib.auth.models import Group

from clusters.models import VM, Cluster, Host
from core.models import AuditEntry
from core.roles import OPERATOR_GROUP, roles_ensure
from migrations_app.models import AgentToken, MigrationJob
from policies.models import MigrationPolicy
from tests.factories import UserFactory
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db


def write_posts(world) -> list[tuple[str, dict]]:
    job = make_job(world.vm, world.destination)
    return [
        ("/clusters/add/", {"name": "x"}),
        (f"/clusters/{world.cluster.pk}/edit/", {"name": "x"}),
        (f"/clusters/{world.cluster.pk}/delete/", {}),
        ("/hosts/add/", {"name": "x"}),
        (f"/hosts/{world.source.pk}/edit/", {"name": "x"}),
        (f"/hosts/{world.source.pk}/delete/", {}),
        (f"/hosts/{world.source.pk}/maintenance/", {}),
        (f"/hosts/{world.source.pk}/activate/", {}),
        (f"/hosts/{world.source.pk}/refresh/", {}),
        (f"/hosts/{world.source.pk}/agent-token/", {}),
        ("/vms/add/", {"name": "x"}),
        (f"/vms/{world.vm.pk}/edit/", {"name": "x"}),
        (f"/vms/{world.vm.pk}/delete/", {}),
        (f"/vms/{world.vm.pk}/migrate/", {"destination_host": str(world.destination.pk)}),
        ("/policies/add/", {"name": "x"}),
        (f"/policies/{world.policy.pk}/edit/", {"name": "x"}),
        (f"/policies/{world.policy.pk}/delete/", {}),
        (f"/migrations/{job.pk}/cancel/", {}),
    ]


def counts():
    return [m.objects.count() for m in (Cluster, Host, VM, MigrationPolicy, MigrationJob, AuditEntry, AgentToken)]


def test_a_read_only_user_is_refused_every_write(reader_client, world):
    posts = write_posts(world)
    before = counts()
    for url, data in posts:
        assert reader_client.post(url, data).status_code == 403, url
    assert counts() == before
    assert MigrationJob.objects.filter(state="queued").count() == 1
    # Nor is the maintenance confirmation (what would move) shown to them.
    assert reader_client.get(f"/hosts/{world.source.pk}/maintenance/").status_code == 403


@pytest.mark.parametrize("kind", ["cluster", "host", "vm", "policy", "job"])
def test_a_read_only_user_sees_no_buttons_to_change_anything(reader_client, world, kind):
    job = make_job(world.vm, world.destination)
    url = {
        "cluster": f"/clusters/{world.cluster.pk}/",
        "host": f"/hosts/{world.source.pk}/",
        "vm": f"/vms/{world.vm.pk}/",
        "policy": f"/policies/{world.policy.pk}/",
        "job": f"/migrations/{job.pk}/",
    }[kind]
    html = reader_client.get(url).content.decode()
    for control in (
        "/edit/",
        "/delete/",
        "/migrate/",
        "maintenance/",
        "activate/",
        "refresh/",
        "agent-token/",
        "/cancel/",
        "/add/",
        "Copy to a new policy",
    ):
        assert control not in html, (url, control)


def test_read_only_lists_have_no_add_buttons(reader_client, world):
    for url in ("/clusters/", "/hosts/", "/vms/", "/policies/"):
        assert "/add/" not in reader_client.get(url).content.decode(), url


def operator_client(client):
    roles_ensure()
    operator = UserFactory(username="op")
    operator.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    client.force_login(operator)
    return client


def test_an_operator_may_migrate_and_maintain_but_not_edit(client, world):
    client = operator_client(client)
    host_page = client.get(f"/hosts/{world.source.pk}/").content.decode()
    assert "maintenance/" in host_page and "refresh/" in host_page
    assert f"/hosts/{world.source.pk}/edit/" not in host_page and "/hosts/add/" not in host_page
    assert "agent-token/" not in host_page  # admins only
    assert client.post(f"/hosts/{world.source.pk}/agent-token/").status_code == 403
    assert not AgentToken.objects.exists()
    vm_page = client.get(f"/vms/{world.vm.pk}/").content.decode()
    assert "/migrate/" in vm_page and "/edit/" not in vm_page
    assert client.get(f"/clusters/{world.cluster.pk}/edit/").status_code == 403
    response = client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": world.destination.pk})
    job = MigrationJob.objects.get(vm=world.vm, state="queued")
    assert (response.status_code, response["Location"]) == (302, f"/migrations/{job.pk}/")
    assert (job.source_host_id, job.destination_host_id, job.created_by.username) == (
        world.source.pk,
        world.destination.pk,
        "op",
    )
    assert AuditEntry.objects.filter(object_id=str(job.pk), action="migrate", actor="op").exists()
    assert client.get(f"/hosts/{world.source.pk}/maintenance/").status_code == 200  # the confirmation
    assert client.post(f"/hosts/{world.source.pk}/maintenance/").status_code == 302
    world.source.refresh_from_db()
    assert world.source.status == "preparing_for_maintenance"  # its VM db-1 is being moved first


def test_an_operator_cannot_open_or_post_a_hosts_edit_form(client, world):
    client = operator_client(client)
    before = (world.source.version, AuditEntry.objects.count())
    assert client.get(f"/hosts/{world.source.pk}/edit/").status_code == 403
    assert client.get("/hosts/add/").status_code == 403
    data = {
        "name": world.source.name,
        "cluster": world.source.cluster_id,
        "address": world.source.address,
        "libvirt_uri": "qemu+ext:///system?command=/tmp/owned",
        "peer_uri": "",
        "version": world.source.version,
    }
    assert client.post(f"/hosts/{world.source.pk}/edit/", data).status_code == 403
    world.source.refresh_from_db()
    assert (world.source.version, AuditEntry.objects.count()) == before
    assert world.source.libvirt_uri != data["libvirt_uri"]
