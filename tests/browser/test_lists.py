"""List pages in Chromium at 1280 px: every column in view (no sideways scroll inside the table),
and the pager moves between numbered pages in place."""

import uuid

import pytest
from playwright.sync_api import expect

from clusters.models import VM
from tests.browser.conftest import WIDE
from tests.factories import PolicyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.parametrize("path", ["/policies/", "/vms/", "/hosts/", "/clusters/", "/migrations/"])
def test_a_list_shows_every_column_at_1280_px(admin_page, live_server, world, path):
    PolicyFactory(name="A custom policy with a long name for the list")
    page = admin_page
    page.set_viewport_size(WIDE)
    page.goto(live_server.url + path)
    table = page.locator(".table-wrap").first
    expect(table).to_be_visible()
    overflow = table.evaluate("element => element.scrollWidth - element.clientWidth")
    assert overflow <= 0, f"{path}: the table scrolls sideways by {overflow}px at 1280 px"


def test_the_pager_moves_to_a_numbered_page_and_a_page_size(admin_page, live_server, world):
    VM.objects.bulk_create(
        VM(name=f"paged-{n:03}", uuid=uuid.uuid4(), host=world.source, memory_mib=1024, vcpus=2) for n in range(60)
    )
    page = admin_page
    page.set_viewport_size(WIDE)
    page.goto(live_server.url + "/vms/?q=paged-&per_page=25")
    expect(page.locator("td.name").first).to_have_text("paged-000")
    page.get_by_role("link", name="Page 3").click()
    expect(page.locator("td.name").first).to_have_text("paged-050")
    assert "page=3" in page.url
    page.get_by_role("link", name="100 per page").click()
    expect(page.locator("td.name")).to_have_count(60)
