"""Forms with errors, the phone layout and a clean first page, in headless Chromium."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from clusters.models import Cluster
from migrations_app.models import JobState, MigrationJob
from tests.browser.conftest import PHONE, WIDE, log_in
from tests.factories import VMFactory
from tests.pages.world import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def sideways_overflow(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_a_refused_cluster_form_sums_up_every_problem_and_focuses_the_first(
    admin_page: Page, live_server, world, screenshots_dir
):
    page = admin_page
    page.goto(f"{live_server.url}/clusters/add/")
    page.get_by_label("Bandwidth", exact=True).select_option("custom")
    page.get_by_label("Parallel migrations", exact=True).select_option("custom")
    page.get_by_role("button", name="Create cluster").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text("There are 3 problems to fix before this cluster can be saved")
    expect(summary.get_by_role("link")).to_have_count(3)
    assert focused_id(page) == "id_name"
    page.screenshot(path=screenshots_dir / "cluster-add-errors-1280.png", full_page=True)
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")

    summary.get_by_role("link", name="Parallel connections").click()
    assert focused_id(page) == "id_custom_parallel_migrations"
    assert not Cluster.objects.exclude(pk=world.cluster.pk).exists()


def test_a_refused_vm_form_focuses_its_first_field_in_error(admin_page: Page, live_server, world):
    page = admin_page
    page.goto(f"{live_server.url}/vms/add/")
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_role("button", name="Add VM").click()

    expect(page.locator("#error-summary")).to_be_visible()
    assert focused_id(page) == "id_uuid"


def test_on_a_phone_the_menu_button_opens_the_navigation_and_nothing_scrolls_sideways(
    admin_page: Page, live_server, world
):
    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")
    nav = page.get_by_role("navigation", name="Main")
    menu = page.get_by_role("button", name="Menu")

    expect(nav).to_be_hidden()
    header = page.locator("header.topbar").bounding_box()
    assert header["height"] < 70, f"the top bar is {header['height']}px high"
    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    nav.get_by_role("link", name="VMs").click()
    expect(page.get_by_role("heading", name="VMs", exact=True)).to_be_visible()
    assert sideways_overflow(page) <= 0

    page.set_viewport_size(WIDE)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_on_a_phone_a_wide_table_scrolls_in_its_frame_not_the_page(admin_page: Page, live_server, world):
    for number in range(3):
        VMFactory(name=f"analytics-warehouse-replica-{number}", host=world.source)
    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/vms/")

    frame = page.locator("#results .table-wrap").first
    widths = frame.evaluate("el => [el.scrollWidth, el.clientWidth, getComputedStyle(el).overflowX]")
    assert widths[0] > widths[1] and widths[2] == "auto", widths
    assert sideways_overflow(page) <= 0


def test_on_a_phone_the_cluster_forms_explanations_come_before_save(admin_page: Page, live_server, world):
    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/clusters/{world.cluster.pk}/edit/")

    panel = page.get_by_role("heading", name="What migrations will do").bounding_box()
    save = page.get_by_role("button", name="Save").bounding_box()
    assert panel["y"] < save["y"]
    page.set_viewport_size(WIDE)
    panel = page.get_by_role("heading", name="What migrations will do").bounding_box()
    save = page.get_by_role("button", name="Save").bounding_box()
    assert panel["x"] > save["x"] + save["width"], "the panel is beside the form at 1280 px"


def test_the_first_page_has_an_icon_and_no_console_error(context, live_server, world, admin_user):
    page = context.new_page()
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    log_in(page, live_server, admin_user)

    page.goto(f"{live_server.url}/")
    page.wait_for_load_state("networkidle")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(live_server.url + icon)

    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg")
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_load_state("networkidle")
    assert errors == [] and failed == []


def test_a_jobs_change_of_state_is_said_in_its_live_region(admin_page: Page, live_server, world):
    running = make_job(world.vm, world.destination, state=JobState.RUNNING, started_at=timezone.now(), progress=40)
    page = admin_page
    page.goto(f"{live_server.url}/migrations/{running.pk}/")
    live = page.locator("#job-live")
    expect(page.locator("#job-status")).to_have_attribute("data-state", "running")
    page.wait_for_timeout(1500)  # a poll or two that change nothing say nothing
    expect(live).to_have_text("")

    MigrationJob.objects.filter(pk=running.pk).update(
        state=JobState.FAILED, finished_at=timezone.now(), error={"code": "x", "message": "the link went down"}
    )

    expect(live).to_have_text("Migration of db-1: Failed. the link went down")
    expect(live).to_have_attribute("aria-live", "polite")


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_the_schedule_editors_remove_buttons_are_in_sight(admin_page: Page, live_server, world, viewport):
    page = admin_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/policies/{world.policy.pk}/edit/")
    page.get_by_role("button", name="Add step").click()

    buttons = page.locator("#schedule-editor").get_by_role("button", name="Remove")
    expect(buttons).to_have_count(3)
    for index in range(3):
        button = buttons.nth(index)
        frame = button.evaluate(
            "el => { const r = el.closest('.table-wrap').getBoundingClientRect(); return [r.left, r.right]; }"
        )
        box = button.bounding_box()
        assert frame[0] <= box["x"] and box["x"] + box["width"] <= frame[1], (index, frame, box)
    assert sideways_overflow(page) <= 0
