"""Issue 18 in a real browser: the impact preview follows the cluster form, columns sort, the
audit page filters."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.models import AuditEntry
from tests.factories import VMFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_impact_preview_follows_the_cluster_form_before_saving(admin_page: Page, live_server, world):
    page = admin_page
    VMFactory(name="db-2", host=world.source, migration_encrypted="true")
    page.goto(f"{live_server.url}/clusters/{world.cluster.pk}/edit/")
    impact = page.locator("#cluster-impact")
    expect(impact).to_contain_text("With Minimal downtime")
    expect(impact).to_contain_text("2 VMs would migrate without parallel connections or zero-copy")

    page.select_option("#id_migration_policy", label="Very large VMs")
    expect(impact).to_contain_text("With Very large VMs")
    expect(impact).to_contain_text("1 VM would use zero-copy")
    expect(impact).to_contain_text("1 VM would migrate")
    expect(impact).to_contain_text("because they are encrypted")
    impact.locator("summary", has_text="because they are encrypted").click()
    expect(impact.locator("a", has_text="db-2")).to_be_visible()
    world.cluster.refresh_from_db()
    assert str(world.cluster.migration_policy_id) != page.eval_on_selector("#id_migration_policy", "e => e.value")


def test_a_column_header_sorts_the_vm_list_both_ways(admin_page: Page, live_server, world):
    page = admin_page
    # Search matches host names too: "mem-" is in no host's name (kvm-a, kvm-b).
    for name, memory in (("mem-small", 1024), ("mem-large", 8192), ("mem-middle", 4096)):
        VMFactory(name=name, host=world.source, memory_mib=memory)
    page.goto(f"{live_server.url}/vms/?q=mem-")
    header = page.locator("th", has_text="Memory")
    header.locator("a").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#results tbody tr td.name")).to_have_text(["mem-small", "mem-middle", "mem-large"])
    page.locator("th", has_text="Memory").locator("a").click()
    expect(page.locator("th", has_text="Memory")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#results tbody tr td.name")).to_have_text(["mem-large", "mem-middle", "mem-small"])


def test_the_audit_page_filters_by_object_type(reader_page: Page, live_server, world):
    page = reader_page
    AuditEntry.objects.create(
        actor="admin", action="maintenance", object_type="host", object_id=str(world.source.pk), object_repr="kvm-a"
    )
    AuditEntry.objects.create(
        actor="admin", action="update", object_type="vm", object_id=str(world.vm.pk), object_repr="db-1"
    )
    page.goto(f"{live_server.url}/audit/")
    expect(page.locator("#results")).to_contain_text("db-1")
    page.select_option("#id_object_type", "host")
    expect(page.locator("#results")).not_to_contain_text("db-1")
    expect(page.locator("#results a", has_text="kvm-a")).to_have_attribute("href", f"/hosts/{world.source.pk}/")
