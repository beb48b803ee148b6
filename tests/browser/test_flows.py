"""The admin flows of issue 5 in a real browser (headless Chromium), against a live server."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import Page, expect

from clusters.models import Cluster
from clusters.services import cluster_update
from core.audit import Actor
from migrations_app.models import JobState, MigrationJob
from policies.models import VERY_LARGE_VMS_ID, MigrationPolicy
from tests.factories import HostFactory
from tests.pages.world import read_only_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TERMINAL = re.compile(r"^(succeeded|failed|cancelled)$")
# A real worker may need a while to claim the job and let libvirt finish or fail it.
TERMINAL_TIMEOUT_MS = 120_000


def wait_for_terminal_state(page: Page, timeout_ms: int = TERMINAL_TIMEOUT_MS) -> str:
    """Wait, on a job's page, until the polled status card shows an end state; return it."""
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-state", TERMINAL, timeout=timeout_ms)
    return status.get_attribute("data-state")


def mark_page(page: Page) -> None:
    """A marker that a full reload would wipe: proves a change happened in place."""
    page.evaluate("window.__ferryNoReload = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__ferryNoReload === true"), "the page was reloaded"


def policy_option(page: Page, name: str):
    return page.locator("#id_migration_policy option", has_text=name)


def test_flow1_the_policy_offer_changes_in_place_with_the_version(admin_page, live_server, world, screenshots_dir):
    page = admin_page
    page.goto(f"{live_server.url}/clusters/add/")
    mark_page(page)
    expect(policy_option(page, "Very large VMs")).to_have_count(1)

    page.select_option("#id_compatibility_version", "4.6")
    expect(policy_option(page, "Very large VMs")).to_have_count(0)
    expect(policy_option(page, "Minimal downtime")).to_have_count(1)
    expect(page.locator("#id_parallel_migrations_policy option")).to_have_count(1)

    page.select_option("#id_compatibility_version", "4.7")
    expect(policy_option(page, "Very large VMs")).to_have_count(1)
    page.select_option("#id_migration_policy", label="Very large VMs")
    notes = page.locator("#cluster-notes")
    expect(notes).to_contain_text("Zero-copy needs parallel connections, so this migration uses them (Auto Parallel)")
    page.select_option("#id_migration_encrypted", "true")
    expect(notes).to_contain_text("This migration is encrypted and zero-copy cannot be encrypted")
    page.screenshot(path=screenshots_dir / "cluster-add-notes-1280.png", full_page=True)

    # Switching back to 4.6 with Very large VMs chosen moves the choice, and says so.
    page.select_option("#id_compatibility_version", "4.6")
    expect(page.locator("#policy-choice .adjusted")).to_contain_text("Very large VMs is not offered")
    expect(page.locator("#id_migration_policy")).to_have_value(str(world.cluster.migration_policy_id))

    # The custom inputs show only for "custom".
    page.select_option("#id_compatibility_version", "4.7")
    expect(page.locator("#id_custom_parallel_migrations")).to_be_hidden()
    expect(page.locator("#id_parallel_migrations_policy option")).to_have_count(4)
    page.select_option("#id_parallel_migrations_policy", "custom")
    expect(page.locator("#id_custom_parallel_migrations")).to_be_visible()
    expect(page.locator("#id_migration_bandwidth_custom_mbps")).to_be_hidden()
    page.select_option("#id_migration_bandwidth", "custom")
    expect(page.locator("#id_migration_bandwidth_custom_mbps")).to_be_visible()
    assert_not_reloaded(page)

    page.fill("#id_name", "big-memory")
    page.fill("#id_custom_parallel_migrations", "8")
    page.fill("#id_migration_bandwidth_custom_mbps", "40000")
    page.select_option("#id_migration_policy", label="Very large VMs")
    page.get_by_role("button", name="Create cluster").click()
    expect(page.locator(".msg-success")).to_have_text("Created cluster big-memory.")
    cluster = Cluster.objects.get(name="big-memory")
    assert (cluster.migration_policy_id, cluster.custom_parallel_migrations) == (VERY_LARGE_VMS_ID, 8)


def test_flow2_a_forged_post_is_refused(admin_page, live_server, world, screenshots_dir):
    page = admin_page
    page.goto(f"{live_server.url}/clusters/add/")
    page.select_option("#id_compatibility_version", "4.6")
    expect(policy_option(page, "Very large VMs")).to_have_count(0)
    page.fill("#id_name", "forged")
    # Put the option the page no longer offers back into the select, as a hand-made post would.
    page.evaluate(
        "id => document.querySelector('#id_migration_policy').add(new Option('Very large VMs', id, true, true))",
        str(VERY_LARGE_VMS_ID),
    )
    page.get_by_role("button", name="Create cluster").click()
    expect(page.locator("#field-migration_policy .field-error")).to_have_text(
        "Very large VMs needs parallel migrations, which compatibility version 4.6 does not support."
    )
    page.locator("#field-migration_policy").screenshot(path=screenshots_dir / "cluster-forged-refused-1280.png")
    assert not Cluster.objects.filter(name="forged").exists()


def test_flow3_edit_and_save_a_cluster_and_the_audit_entry_appears(admin_page, live_server, world):
    page = admin_page
    page.goto(f"{live_server.url}/clusters/{world.cluster.pk}/")
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(f"{live_server.url}/clusters/{world.cluster.pk}/edit/")
    page.fill("#id_description", "Production, zero-copy")
    page.select_option("#id_migration_policy", label="Very large VMs")
    page.select_option("#id_parallel_migrations_policy", "auto_parallel")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(f"{live_server.url}/clusters/{world.cluster.pk}/")
    expect(page.locator(".msg-success")).to_have_text("Saved cluster prod.")
    entry = page.locator("#history .audit-entry").first
    expect(entry).to_contain_text("admin")
    expect(entry).to_contain_text("update")
    expect(entry).to_contain_text("Minimal downtime → Very large VMs")
    expect(entry).to_contain_text("Production, zero-copy")


def test_flow4_migrate_with_the_plan_preview_then_follow_the_job(
    admin_page, live_server, world, worker, screenshots_dir
):
    world.cluster.migration_policy_id = VERY_LARGE_VMS_ID
    world.cluster.save()
    slow = HostFactory(name="kvm-slow", cluster=world.cluster, capabilities={"link_speed_mbps": 10_000})
    page = admin_page
    page.goto(f"{live_server.url}/vms/{world.vm.pk}/")
    page.get_by_role("link", name="Migrate").click()
    preview = page.locator("#plan-preview")
    expect(preview).to_contain_text("VIR_MIGRATE_ZEROCOPY")
    expect(preview).to_contain_text("parallel.connections = 9")
    expect(preview).to_contain_text("parallel_enforced")
    mark_page(page)

    page.select_option("#id_destination_host", str(slow.pk))
    expect(preview).to_contain_text("1250 MiB/s")
    expect(preview).to_contain_text("parallel_fallback")
    page.screenshot(path=screenshots_dir / "vm-migrate-fallback-preview-1280.png", full_page=True)
    expect(preview.locator(".flag", has_text="parallel.connections = 2")).to_have_count(1)
    page.select_option("#id_destination_host", str(world.destination.pk))
    expect(preview).to_contain_text("12500 MiB/s")
    assert_not_reloaded(page)

    page.get_by_role("button", name="Confirm migration").click()
    expect(page).to_have_url(re.compile(rf"{live_server.url}/migrations/[0-9a-f-]{{36}}/$"))
    job = MigrationJob.objects.get(
        vm=world.vm,
        state__in=("queued", "running", "succeeded", "failed", "cancelled"),
        destination_host=world.destination,
        created_by__username="admin",
    )
    assert "VIR_MIGRATE_ZEROCOPY" in job.plan["libvirt"]["flags"]
    expect(page.locator(".msg-success")).to_contain_text("is queued")
    expect(page.locator("#job-state")).to_have_text(re.compile("Queued|Running|Succeeded|Failed"))
    expect(page.get_by_role("progressbar")).to_be_visible()
    page.screenshot(path=screenshots_dir / "migration-started-1280.png", full_page=True)
    # The real worker claims the job, libvirt cannot be reached at the source, the job fails cleanly.
    assert wait_for_terminal_state(page) == "failed"
    job.refresh_from_db()
    assert (job.state, job.error["code"]) == ("failed", "migration_failed")
    expect(page.locator("#job-status")).to_contain_text("libvirt")
    page.screenshot(path=screenshots_dir / "migration-failed-1280.png", full_page=True)


@pytest.mark.lab
def test_flow4_on_the_lab_a_real_migration_reaches_succeeded(
    admin_page, live_server, lab, lab_cluster, screenshots_dir
):
    from tests.worker_fixtures import vm_of

    vm = vm_of(lab["guest"])
    destination = vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    page = admin_page
    page.goto(f"{live_server.url}/vms/{vm.pk}/migrate/")
    page.select_option("#id_destination_host", str(destination.pk))
    preview = page.locator("#plan-preview")
    expect(preview).to_contain_text("VIR_MIGRATE_ZEROCOPY")
    page.get_by_role("button", name="Confirm migration").click()
    expect(page).to_have_url(re.compile(rf"{live_server.url}/migrations/[0-9a-f-]{{36}}/$"))
    assert wait_for_terminal_state(page) == "succeeded"
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    page.screenshot(path=screenshots_dir / "migration-succeeded-lab-1280.png", full_page=True)
    vm.refresh_from_db()
    assert vm.host_id == destination.pk


def test_the_job_page_follows_the_job_live_and_stops_polling_at_the_end(admin_page, live_server, world):
    """The job's state is changed behind the page, as the host's worker does; the page follows."""
    job = MigrationJob.objects.create(
        vm=world.vm, source_host=world.source, destination_host=world.destination, plan=world.failed_job.plan
    )
    page = admin_page
    page.goto(f"{live_server.url}/migrations/{job.pk}/")
    mark_page(page)
    expect(page.locator("#job-state")).to_have_text("Queued")
    MigrationJob.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, progress=40, stats={"data_remaining": 6 * 2**30, "data_total": 10 * 2**30}
    )
    expect(page.locator("#job-state")).to_have_text("Running")
    expect(page.locator(".pct")).to_have_text("40%")
    expect(page.locator("#job-status")).to_contain_text("6.0 GiB")
    job.refresh_from_db()
    job.state, job.progress, job.stats = JobState.SUCCEEDED, 100, {"data_remaining": 0, "downtime_ms": 87}
    job.finished_at = job.created_at
    job.save()
    assert wait_for_terminal_state(page, timeout_ms=10_000) == "succeeded"
    expect(page.locator("#job-status")).to_contain_text("87 ms")
    expect(page.get_by_role("button", name="Cancel migration")).to_have_count(0)
    expect(page.locator("#job-status")).not_to_have_attribute("hx-trigger", re.compile("every"))
    assert_not_reloaded(page)


def test_cancelling_a_queued_job_ends_it(admin_page, live_server, world):
    job = MigrationJob.objects.create(
        vm=world.vm, source_host=world.source, destination_host=world.destination, plan=world.failed_job.plan
    )
    page = admin_page
    page.goto(f"{live_server.url}/migrations/{job.pk}/")
    page.get_by_role("button", name="Cancel migration").click()
    expect(page.locator(".msg-success")).to_have_text("Migration cancelled.")
    assert wait_for_terminal_state(page, timeout_ms=5_000) == "cancelled"


def test_flow5_a_stale_edit_is_refused_and_shows_what_changed(
    admin_page, live_server, world, admin_user, screenshots_dir
):
    page = admin_page
    page.goto(f"{live_server.url}/clusters/{world.cluster.pk}/edit/")
    # Someone else saves while this form is open.
    cluster_update(
        actor=Actor.of(admin_user),
        cluster=Cluster.objects.get(pk=world.cluster.pk),
        data={"description": "Alice was here", "migration_encrypted": "true"},
    )
    page.fill("#id_description", "My description")
    page.get_by_role("button", name="Save").click()

    stale = page.locator("#stale-edit")
    expect(stale).to_contain_text("Someone else saved this cluster while you were editing it")
    expect(stale.locator("tr", has_text="Description")).to_contain_text("Alice was here")
    expect(stale.locator("tr", has_text="Migration encryption")).to_contain_text("On: migrate over TLS")
    expect(page.locator("#id_description")).to_have_value("My description")
    page.screenshot(path=screenshots_dir / "cluster-stale-edit-1280.png")
    assert Cluster.objects.get(pk=world.cluster.pk).description == "Alice was here"

    page.get_by_role("button", name="Save").click()
    expect(page.locator(".msg-success")).to_have_text("Saved cluster prod.")
    assert Cluster.objects.get(pk=world.cluster.pk).description == "My description"


def test_flow6_a_read_only_user_sees_no_edit_buttons(page, live_server, world, screenshots_dir):
    read_only_user("viewer")
    page.goto(f"{live_server.url}/clusters/")
    expect(page).to_have_url(re.compile("/accounts/login/"))
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/clusters/")

    for path in (
        f"/clusters/{world.cluster.pk}/",
        f"/hosts/{world.source.pk}/",
        f"/vms/{world.vm.pk}/",
        f"/policies/{world.policy.pk}/",
        f"/migrations/{world.failed_job.pk}/",
    ):
        page.goto(live_server.url + path)
        expect(page.locator("h1")).to_be_visible()
        for name in (
            "Edit",
            "Delete",
            "Migrate",
            "Maintenance",
            "Activate",
            "Refresh capabilities",
            "Add host",
            "Cancel migration",
            "Copy to a new policy",
        ):
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    page.screenshot(path=screenshots_dir / "read-only-migration-detail-1280.png")

    page.goto(f"{live_server.url}/clusters/{world.cluster.pk}/edit/")
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile("/accounts/login/"))


def test_log_in_as_admin_through_the_form(page, live_server, admin_user):
    """The other browser tests start with a session cookie; this one earns it through the form."""
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    assert not [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".error")).to_contain_text("did not match")

    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Clusters")
    [cookie] = [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    assert SessionStore(session_key=cookie["value"]).get("_auth_user_id") == str(admin_user.pk)


def test_the_schedule_editor_adds_and_removes_rows(admin_page, live_server, world):
    page = admin_page
    page.goto(f"{live_server.url}/policies/add/?from={VERY_LARGE_VMS_ID}")
    mark_page(page)
    page.fill("#id_name", "Huge guests, patient")
    stalling = page.locator("#stalling-rows tr")
    expect(stalling).to_have_count(5)
    stalling.nth(4).get_by_role("button", name="Remove").click()
    expect(stalling).to_have_count(4)
    page.get_by_role("button", name="Add step").click()
    new_row = stalling.nth(4)
    new_row.get_by_label("After iteration").fill("8")
    new_row.get_by_label("Action").select_option("abort")
    expect(new_row.get_by_label("Downtime (ms)")).to_be_hidden()
    last = page.locator("#last-rows tr")
    last.nth(1).get_by_role("button", name="Remove").click()  # abort, re-added below after a longer downtime
    page.get_by_role("button", name="Add action").click()
    last.nth(1).get_by_label("Downtime (ms)").fill("9000")
    page.get_by_role("button", name="Add action").click()
    last.nth(2).get_by_label("Action").select_option("abort")
    expect(last).to_have_count(3)
    assert_not_reloaded(page)
    page.get_by_role("button", name="Create policy").click()

    expect(page.locator(".msg-success")).to_have_text("Created migration policy Huge guests, patient.")
    expect(page.locator("#schedule")).to_contain_text("After iteration 8")
    convergence = MigrationPolicy.objects.get(name="Huge guests, patient").convergence
    assert [step["limit"] for step in convergence["stalling"]] == [1, 2, 3, 4, 8]
    assert convergence["stalling"][-1]["action"] == {"name": "abort", "params": []}
    assert [action["params"] for action in convergence["last"]] == [["5000"], ["9000"], []]
