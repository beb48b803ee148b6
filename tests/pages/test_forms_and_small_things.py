"""Forms that report every problem at once, under a summary; and the small things of every page:
plurals, "add the first one", the API root, the icon, times with their zone, a live job state."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.utils import formats, timezone

from clusters.models import VM, Cluster, Host
from migrations_app.models import MigrationJob
from tests.factories import ClusterFactory, VMFactory
from tests.pages.test_cluster_pages import cluster_post

pytestmark = pytest.mark.django_db


def field_errors(response) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def summary_links(html: str) -> list[str]:
    summary = html[html.index('id="error-summary"') : html.index("</div>", html.index('id="error-summary"'))]
    return re.findall(r'<a href="#([^"]+)">', summary)


def test_the_cluster_form_reports_a_missing_name_and_the_models_rules_in_one_round(admin_client):
    response = admin_client.post(
        "/clusters/add/",
        cluster_post(
            name="",
            migration_bandwidth="custom",
            migration_bandwidth_custom_mbps="",
            parallel_migrations_policy="custom",
            custom_parallel_migrations="",
        ),
    )

    errors = field_errors(response)
    assert set(errors) == {"name", "migration_bandwidth_custom_mbps", "custom_parallel_migrations"}
    assert not Cluster.objects.filter(name="").exists()


def test_a_level_rule_is_reported_with_a_missing_policy_and_name(admin_client):
    response = admin_client.post(
        "/clusters/add/",
        cluster_post(name="", compatibility_version="4.6", migration_policy="", parallel_migrations_policy="auto"),
    )

    errors = field_errors(response)
    assert set(errors) == {"name", "migration_policy", "parallel_migrations_policy"}
    assert "4.6 does not support parallel migrations" in errors["parallel_migrations_policy"][0]


@pytest.mark.parametrize("count", ["1", "300"])
def test_a_count_out_of_range_gets_one_message(admin_client, count):
    response = admin_client.post(
        "/clusters/add/", cluster_post(parallel_migrations_policy="custom", custom_parallel_migrations=count)
    )

    assert field_errors(response) == {"custom_parallel_migrations": ["Parallel connections must be 2..255."]}


def test_a_taken_name_gets_one_message_on_the_name_and_none_above_the_form(admin_client):
    ClusterFactory(name="prod")

    response = admin_client.post("/clusters/add/", cluster_post(name="PROD"))

    errors = field_errors(response)
    assert list(errors) == ["name"] and len(errors["name"]) == 1
    assert "already exists" in errors["name"][0]


def test_the_api_still_refuses_a_taken_name_on_the_name(admin_client):
    ClusterFactory(name="prod")

    response = admin_client.post("/api/clusters/", {"name": "Prod"}, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_the_cluster_summary_links_every_field_in_error(admin_client):
    html = admin_client.post(
        "/clusters/add/", cluster_post(name="", migration_bandwidth="custom", migration_bandwidth_custom_mbps="")
    ).content.decode()

    assert "There are 2 problems to fix before this cluster can be saved" in html
    assert summary_links(html) == ["id_name", "id_migration_bandwidth_custom_mbps"]
    assert 'id="id_name"' in html and 'id="id_migration_bandwidth_custom_mbps"' in html
    assert 'aria-describedby="id_name_error"' in html and 'id="id_name_error"' in html


def test_the_policy_host_and_vm_forms_have_the_summary(admin_client, world):
    policy = admin_client.post("/policies/add/", {"name": "", "max_migrations": "0"}).content.decode()
    host = admin_client.post("/hosts/add/", {"name": "h", "address": "", "libvirt_uri": "ftp://x"}).content.decode()
    vm = admin_client.post("/vms/add/", {"name": "", "memory_mib": "0", "vcpus": "2"}).content.decode()

    assert summary_links(policy)[:2] == ["id_name", "id_max_migrations"]
    assert {"id_cluster", "id_address", "id_libvirt_uri"} <= set(summary_links(host))
    assert {"id_name", "id_uuid", "id_host", "id_memory_mib"} <= set(summary_links(vm))
    assert not Host.objects.filter(name="h").exists() and VM.objects.count() == 1


def test_the_migrate_form_has_the_summary(admin_client, world):
    html = admin_client.post(f"/vms/{world.vm.pk}/migrate/", {"destination_host": str(uuid.uuid4())}).content.decode()

    assert summary_links(html) == ["id_destination_host"]
    assert 'aria-invalid="true"' in html
    assert not MigrationJob.objects.exclude(pk=world.failed_job.pk).exists()


def test_a_valid_form_has_no_summary(admin_client, world):
    assert 'id="error-summary"' not in admin_client.get("/clusters/add/").content.decode()


@pytest.mark.parametrize(("vms", "text"), [(1, "1 VM matches the filters"), (2, "2 VMs match the filters")])
def test_the_count_of_matches_agrees_with_its_number(admin_client, world, vms, text):
    for number in range(vms - 1):
        VMFactory(name=f"web-{number}", host=world.source)

    html = admin_client.get(f"/vms/?host={world.source.pk}").content.decode()

    assert text in html


def test_empty_host_and_vm_lists_offer_the_first_one_to_who_may_add(admin_client, reader_client):
    for url, add in (("/hosts/", "/hosts/add/"), ("/vms/", "/vms/add/")):
        assert f'<a href="{add}">Add the first one.</a>' in admin_client.get(url).content.decode()
        assert "Add the first one" not in reader_client.get(url).content.decode()


def test_the_api_root_lists_the_collections(reader_client):
    response = reader_client.get("/api/")

    assert response.status_code == 200
    links = response.json()
    assert links["clusters"] == "http://testserver/api/clusters/"
    assert links["vms"] == "http://testserver/api/vms/" and links["docs"] == "http://testserver/api/docs/"
    for url in links.values():
        assert reader_client.get(url).status_code == 200, url


def test_the_api_root_needs_a_login():
    assert Client().get("/api/").status_code == 401


def test_every_page_links_the_icon_and_favicon_ico_leads_there(reader_client):
    html = reader_client.get("/").content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', html).group(1)

    response = reader_client.get("/favicon.ico")

    assert response.status_code == 301 and response["Location"] == icon
    assert icon.endswith(".svg")


def test_times_carry_their_zone_in_one_format_on_pages_and_in_admin(admin_client, world):
    job = world.failed_job
    shown = formats.date_format(timezone.localtime(job.created_at), "DATETIME_FORMAT")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown)

    page = admin_client.get(f"/migrations/{job.pk}/").content.decode()
    admin = admin_client.get("/admin/migrations_app/migrationjob/").content.decode()

    assert f'<time datetime="{timezone.localtime(job.created_at).isoformat()}">{shown}</time>' in page
    assert shown in admin


def test_a_jobs_state_has_a_live_region_outside_the_card_that_polls(admin_client, world):
    from tests.pages.world import make_job

    running = make_job(world.vm, world.destination, state="running", started_at=timezone.now())
    html = admin_client.get(f"/migrations/{running.pk}/").content.decode()

    region = html.index('id="job-live"')
    card = html.index('id="job-status"')
    assert 'aria-live="polite"' in html[html.rindex("<p", 0, region) : card]
    assert region < card and 'data-announce="#job-live"' in html
