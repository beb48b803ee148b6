"""Every page renders for an admin and for a read-only user; anonymous users are sent to log in."""

import re

import pytest
from django.utils.html import strip_tags

from clusters.models import HostStatus
from migrations_app.models import JobState
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory, HostFactory, VMFactory
from tests.pages.world import make_job

pytestmark = pytest.mark.django_db


def read_pages(world) -> dict[str, tuple[str, list[str]]]:
    """Each page: its heading, and what it must show of the world (tags stripped)."""
    vm, source, destination, job = world.vm, world.source, world.destination, world.failed_job
    return {
        "/": ("Dashboard", ["Recent failures", "the destination refused the connection"]),
        "/clusters/": ("Clusters", ["prod", "Minimal downtime"]),
        f"/clusters/{world.cluster.pk}/": ("prod", ["Production hypervisors", "kvm-a", "kvm-b"]),
        "/hosts/": ("Hosts", ["kvm-a", "kvm-b", source.address, destination.address]),
        f"/hosts/{source.pk}/": ("kvm-a", [source.libvirt_uri, f"host.{source.pk}", "QEMU 7.2.0", "db-1"]),
        "/vms/": ("VMs", ["db-1", "kvm-a", "64.0 GiB"]),
        f"/vms/{vm.pk}/": ("db-1", [str(vm.uuid), "Memory 64.0 GiB", "vCPUs 16", "kvm-a → kvm-b Failed"]),
        "/policies/": ("Migration policies", ["Very large VMs", "Minimal downtime", "Fast lane"]),
        f"/policies/{VERY_LARGE_VMS_ID}/": ("Very large VMs", ["Built-in, read-only", "Then Abort the migration"]),
        f"/policies/{world.policy.pk}/": ("Fast lane", ["At most 2 outgoing and incoming", "Downtime 400 ms"]),
        "/tokens/": ("API tokens", ["You have no API token.", 'name="name"', 'name="expires_days"']),
        "/migrations/": ("Migrations", ["db-1", "kvm-a → kvm-b", "Failed"]),
        f"/migrations/{job.pk}/": (
            "Migration of db-1",
            [
                "Failed 37%",
                "the destination refused the connection",
                "VIR_MIGRATE_LIVE",
                f"tcp://{destination.address}",
            ],
        ),
    }


def write_pages(world) -> dict[str, tuple[str, list[str]]]:
    """Each form: its heading, and the inputs (and current values) it must offer."""
    cluster, source, vm, policy = world.cluster, world.source, world.vm, world.policy
    return {
        "/clusters/add/": ("Add cluster", ['name="name"', 'name="compatibility_version"', 'name="migration_policy"']),
        f"/clusters/{cluster.pk}/edit/": ("Edit cluster prod", ['value="prod"', 'name="version"']),
        f"/clusters/{cluster.pk}/delete/": ("Delete cluster prod?", ["cannot be deleted while these use it"]),
        "/hosts/add/": ("Add host", ['name="address"', 'name="libvirt_uri"', 'name="peer_uri"']),
        f"/hosts/{source.pk}/edit/": ("Edit host kvm-a", ['value="kvm-a"', f'value="{source.address}"']),
        f"/hosts/{source.pk}/delete/": ("Delete host kvm-a?", ["db-1"]),
        "/vms/add/": ("Add VM", ['name="uuid"', 'name="memory_mib"', 'name="vcpus"']),
        f"/vms/{vm.pk}/edit/": ("Edit VM db-1", ['value="db-1"', 'value="65536"']),
        f"/vms/{vm.pk}/delete/": ("Delete VM db-1?", ['type="submit"']),
        "/policies/add/": ("Add migration policy", ['name="name"', 'name="max_migrations"']),
        f"/policies/{policy.pk}/edit/": ("Edit policy Fast lane", ['value="Fast lane"']),
        f"/policies/{policy.pk}/delete/": ("Delete migration policy Fast lane?", ['type="submit"']),
        f"/vms/{vm.pk}/migrate/": ("Migrate db-1", ["Confirm migration", "kvm-b", "VIR_MIGRATE_LIVE"]),
    }


def assert_shows(response, url: str, heading: str, content: list[str]) -> None:
    assert response.status_code == 200, url
    page = response.content.decode()
    h1 = re.findall(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert [strip_tags(text).strip() for text in h1] == [heading], (url, h1)
    main = page.split("<main", 1)[1]
    text = " ".join(re.sub(r"<[^>]+>", " ", main).split())
    missing = [item for item in content if item not in main and item not in text]
    assert not missing, f"{url} does not show {missing}"


def test_every_page_renders_for_an_admin(admin_client, world):
    for url, (heading, content) in (read_pages(world) | write_pages(world)).items():
        assert_shows(admin_client.get(url), url, heading, content)


def test_every_read_page_renders_for_a_read_only_user(reader_client, world):
    for url, (heading, content) in read_pages(world).items():
        assert_shows(reader_client.get(url), url, heading, content)


def test_write_pages_are_forbidden_to_a_read_only_user(reader_client, world):
    for url in write_pages(world):
        assert reader_client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_the_login_page(client, world):
    for url in read_pages(world) | write_pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_a_logged_in_user_without_view_permissions_gets_403(client, world, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw-for-tests")
    client.force_login(user)
    assert client.get("/clusters/").status_code == 403
    assert client.get(f"/vms/{world.vm.pk}/").status_code == 403


def test_the_login_page_and_logout_work(client, admin_user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "admin", "password": "pw-for-tests"})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "Log out" in page and "Clusters" in page and "Dashboard" in page
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def dashboard_figures(page: str) -> dict[str, int]:
    return {label: int(n) for n, label in re.findall(r'<div class="n">(\d+)</div><div class="l">([^<]+)</div>', page)}


def test_the_dashboard_shows_the_figures_and_recent_failures(admin_client, world):
    # A figure of its own for each tile: 2 clusters, 3 hosts up, 1 not, 6 VMs, 4 jobs queued or running.
    other = ClusterFactory(name="edge")
    HostFactory(name="kvm-c", cluster=other)
    HostFactory(name="kvm-m", cluster=other, status=HostStatus.MAINTENANCE)
    busy = [VMFactory(name=f"busy-{i}", host=world.source) for i in range(4)]
    VMFactory(name="idle", host=world.destination)
    make_job(busy[0], world.destination)
    for vm in busy[1:]:
        make_job(vm, world.destination, state=JobState.RUNNING, progress=10)
    make_job(world.vm, world.destination, state=JobState.SUCCEEDED)

    page = admin_client.get("/").content.decode()

    assert dashboard_figures(page) == {
        "Clusters": 2,
        "Hosts up": 3,
        "Hosts not up": 1,
        "VMs": 6,
        "Migrations running": 4,
    }
    in_progress, failures, not_up = (
        page.split("<h2>Migrations in progress</h2>")[1].split("<h2>Recent failures</h2>")[0],
        page.split("<h2>Recent failures</h2>")[1].split("<h2>Hosts not up</h2>")[0],
        page.split("<h2>Hosts not up</h2>")[1],
    )
    assert all(f">{vm.name}<" in in_progress for vm in busy) and ">db-1<" not in in_progress
    assert "the destination refused the connection" in failures and f"/migrations/{world.failed_job.pk}/" in failures
    assert "kvm-m" in not_up and "Maintenance" in not_up and "kvm-c" not in not_up


def test_an_htmx_request_after_the_session_ended_sends_the_page_to_the_login_form(client, world):
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/clusters/add/"}
    for url in ("/clusters/form-options/", f"/migrations/{world.failed_job.pk}/status/", "/clusters/"):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, url
        assert response["HX-Redirect"] == "/accounts/login/?next=%2Fclusters%2Fadd%2F", url
