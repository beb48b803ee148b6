"""Every page renders for an admin and for a read-only user; anonymous users are sent to log in."""

import pytest

from policies.models import VERY_LARGE_VMS_ID

pytestmark = pytest.mark.django_db


def read_pages(world) -> list[str]:
    return [
        "/",
        "/clusters/",
        f"/clusters/{world.cluster.pk}/",
        "/hosts/",
        f"/hosts/{world.source.pk}/",
        "/vms/",
        f"/vms/{world.vm.pk}/",
        "/policies/",
        f"/policies/{VERY_LARGE_VMS_ID}/",
        f"/policies/{world.policy.pk}/",
        "/migrations/",
        f"/migrations/{world.failed_job.pk}/",
    ]


def write_pages(world) -> list[str]:
    return [
        "/clusters/add/",
        f"/clusters/{world.cluster.pk}/edit/",
        f"/clusters/{world.cluster.pk}/delete/",
        "/hosts/add/",
        f"/hosts/{world.source.pk}/edit/",
        f"/hosts/{world.source.pk}/delete/",
        "/vms/add/",
        f"/vms/{world.vm.pk}/edit/",
        f"/vms/{world.vm.pk}/delete/",
        "/policies/add/",
        f"/policies/{world.policy.pk}/edit/",
        f"/policies/{world.policy.pk}/delete/",
        f"/vms/{world.vm.pk}/migrate/",
    ]


def test_every_page_renders_for_an_admin(admin_client, world):
    for url in read_pages(world) + write_pages(world):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert b"<h1" in response.content, url


def test_every_read_page_renders_for_a_read_only_user(reader_client, world):
    for url in read_pages(world):
        assert reader_client.get(url).status_code == 200, url


def test_write_pages_are_forbidden_to_a_read_only_user(reader_client, world):
    for url in write_pages(world):
        assert reader_client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_the_login_page(client, world):
    for url in read_pages(world) + write_pages(world):
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


def test_the_dashboard_shows_the_figures_and_recent_failures(admin_client, world):
    page = admin_client.get("/").content.decode()
    for label in ("Clusters", "Hosts up", "Hosts not up", "VMs", "Migrations running", "Recent failures"):
        assert label in page
    assert "the destination refused the connection" in page


def test_an_htmx_request_after_the_session_ended_sends_the_page_to_the_login_form(client, world):
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/clusters/add/"}
    for url in ("/clusters/form-options/", f"/migrations/{world.failed_job.pk}/status/", "/clusters/"):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, url
        assert response["HX-Redirect"] == "/accounts/login/?next=%2Fclusters%2Fadd%2F", url
