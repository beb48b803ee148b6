"""Every page type under Ferry's Content Security Policy in a real browser: the `page` fixture
(tests/browser/conftest.py) fails a test on any violation Chromium reports."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_policy_blocks_an_inline_script_and_the_fixture_sees_it(live_server, context, world):
    """The check itself can fail: an inline script added to a Ferry page is refused and reported."""
    seen: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: seen.append(message.text))
    page.goto(f"{live_server.url}/accounts/login/")

    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.ran = 1";
                             document.body.appendChild(s); }""")

    assert page.evaluate("() => window.ran") is None
    assert any("Content Security Policy" in text for text in seen)


def test_every_page_type_loads_without_a_violation(admin_page: Page, live_server, world):
    page = admin_page
    urls = [
        "/",
        "/clusters/",
        f"/clusters/{world.cluster.pk}/",
        f"/clusters/{world.cluster.pk}/edit/",
        "/hosts/",
        f"/hosts/{world.source.pk}/",
        "/vms/",
        f"/vms/{world.vm.pk}/",
        f"/vms/{world.vm.pk}/migrate/",
        "/policies/",
        "/policies/add/",
        "/migrations/",
        f"/migrations/{world.failed_job.pk}/",
        "/audit/",
        "/admin/",
        "/admin/clusters/cluster/",
        f"/admin/clusters/cluster/{world.cluster.pk}/change/",
        "/api/",
        "/api/docs/",
        "/no-such-page/",
    ]
    for url in urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
    expect(page.locator("#swagger-ui, body").first).to_be_visible()


def test_the_api_docs_render_under_the_policy(admin_page: Page, live_server, world):
    admin_page.goto(f"{live_server.url}/api/docs/")

    expect(admin_page.locator(".swagger-ui .info")).to_contain_text("Ferry API")


def test_a_progress_bar_shows_the_jobs_progress(admin_page: Page, live_server, world):
    admin_page.goto(f"{live_server.url}/migrations/{world.failed_job.pk}/")

    expect(admin_page.get_by_role("progressbar")).to_have_attribute("value", "37")


def test_the_policy_editor_adds_rows_under_the_policy(admin_page: Page, live_server, world):
    admin_page.goto(f"{live_server.url}/policies/add/")
    rows = admin_page.locator("#stalling-rows tr")
    before = rows.count()

    admin_page.get_by_role("button", name="Add step").click()

    expect(rows).to_have_count(before + 1)
