"""Screenshots of the main pages at 1280x800, 800x900 and 390x844 (a phone), for a person to look at.

They land in test-results/screenshots/<page>-<width>.png. The checks here are the ones a
screenshot cannot make by itself: no page scrolls sideways, at any of these widths.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from migrations_app.models import JobState
from policies.models import VERY_LARGE_VMS_ID
from tests.browser.conftest import NARROW, PHONE, WIDE
from tests.factories import HostFactory, VMFactory
from tests.pages.world import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def furnish(world):
    """More to look at: Very large VMs on the cluster, a running job, a host in maintenance."""
    world.cluster.migration_policy_id = VERY_LARGE_VMS_ID
    world.cluster.save()
    HostFactory(name="kvm-c", cluster=world.cluster, status="maintenance", capabilities={})
    analytics = VMFactory(name="analytics-7", host=world.destination, memory_mib=1_572_864, vcpus=64)
    return make_job(
        analytics,
        world.source,
        state=JobState.RUNNING,
        progress=63,
        started_at=timezone.now(),
        stats={"data_remaining": 590 * 2**30, "data_total": 1536 * 2**30},
    )


def main_pages(world, running) -> dict[str, str]:
    return {
        "dashboard": "/",
        "cluster-list": "/clusters/",
        "cluster-edit": f"/clusters/{world.cluster.pk}/edit/",
        "cluster-detail": f"/clusters/{world.cluster.pk}/",
        "policy-detail-builtin": f"/policies/{VERY_LARGE_VMS_ID}/",
        "policy-edit-custom": f"/policies/{world.policy.pk}/edit/",
        "host-detail": f"/hosts/{world.source.pk}/",
        "vm-migrate": f"/vms/{world.vm.pk}/migrate/",
        "migration-detail": f"/migrations/{running.pk}/",
        "migration-detail-failed": f"/migrations/{world.failed_job.pk}/",
        "host-list": "/hosts/",
        "vm-list": "/vms/",
        "policy-list": "/policies/",
        "migration-list": "/migrations/",
    }


def test_screenshots_of_the_main_pages(admin_page, live_server, world, screenshots_dir):
    page = admin_page
    running = furnish(world)
    for viewport in (WIDE, NARROW, PHONE):
        page.set_viewport_size(viewport)
        for name, path in main_pages(world, running).items():
            page.goto(live_server.url + path)
            page.wait_for_load_state("domcontentloaded")
            page.screenshot(path=screenshots_dir / f"{name}-{viewport['width']}.png", full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {viewport['width']}px"


def test_screenshot_of_the_login_page(page, live_server, transactional_db, screenshots_dir):
    for viewport in (WIDE, NARROW, PHONE):
        page.set_viewport_size(viewport)
        page.goto(live_server.url + "/accounts/login/")
        expect(page.get_by_role("heading", name="Log in to Ferry")).to_be_visible()
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.get_by_label("Password")).to_be_visible()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        path = screenshots_dir / f"login-{viewport['width']}.png"
        path.unlink(missing_ok=True)
        page.screenshot(path=path)
        assert path.read_bytes().startswith(b"\x89PNG"), path
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the login page scrolls sideways by {overflow}px at {viewport['width']}px"
