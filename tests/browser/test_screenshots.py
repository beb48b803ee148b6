"""Screenshots of the main pages at 1280x800 and 800x900, for a person to look at.

They land in test-results/screenshots/<page>-<width>.png. The checks here are the ones a
screenshot cannot make by itself: no page scrolls sideways, at either width.
"""

import pytest

from policies.models import VERY_LARGE_VMS_ID
from tests.browser.conftest import NARROW, WIDE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def main_pages(world) -> dict[str, str]:
    return {
        "dashboard": "/",
        "cluster-list": "/clusters/",
        "cluster-edit": f"/clusters/{world.cluster.pk}/edit/",
        "cluster-detail": f"/clusters/{world.cluster.pk}/",
        "policy-detail-builtin": f"/policies/{VERY_LARGE_VMS_ID}/",
        "policy-edit-custom": f"/policies/{world.policy.pk}/edit/",
        "host-detail": f"/hosts/{world.source.pk}/",
        "vm-migrate": f"/vms/{world.vm.pk}/migrate/",
        "migration-detail": f"/migrations/{world.failed_job.pk}/",
        "host-list": "/hosts/",
        "vm-list": "/vms/",
        "policy-list": "/policies/",
        "migration-list": "/migrations/",
    }


def test_screenshots_of_the_main_pages(admin_page, live_server, world, screenshots_dir):
    page = admin_page
    for viewport in (WIDE, NARROW):
        page.set_viewport_size(viewport)
        for name, path in main_pages(world).items():
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=screenshots_dir / f"{name}-{viewport['width']}.png", full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {viewport['width']}px"


def test_screenshot_of_the_login_page(page, live_server, transactional_db, screenshots_dir):
    page.goto(live_server.url + "/accounts/login/")
    page.screenshot(path=screenshots_dir / "login-1280.png")
