"""List pages: numbered pages, a page size to choose, and the same queries whatever the page or size."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.models import VM
from core.views import PAGE_SIZE_DEFAULT
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sixty_vms(db):
    host = HostFactory(name="kvm-paging")
    VM.objects.bulk_create(
        VM(name=f"vm-{n:03}", uuid=uuid.uuid4(), host=host, memory_mib=1024, vcpus=2) for n in range(60)
    )
    return host


def vm_names(page: str) -> list[str]:
    return re.findall(r">(vm-\d{3})</a>", page)


def test_a_page_size_is_chosen_and_kept_by_the_page_links(admin_client, sixty_vms):
    page = admin_client.get("/vms/", {"per_page": 25}).content.decode()
    assert vm_names(page) == [f"vm-{n:03}" for n in range(25)]
    assert 'aria-label="Page 3"' in page and "per_page=25&amp;page=3" in page
    last = admin_client.get("/vms/", {"per_page": 25, "page": 3}).content.decode()
    assert vm_names(last) == [f"vm-{n:03}" for n in range(50, 60)]
    assert 'aria-current="page" href="?per_page=25&amp;page=3"' in last


def test_an_unknown_page_size_is_the_default(admin_client, sixty_vms):
    for junk in ("7", "1000000", "-1", "x"):
        page = admin_client.get("/vms/", {"per_page": junk}).content.decode()
        assert len(vm_names(page)) == PAGE_SIZE_DEFAULT


def test_page_links_keep_the_filters_and_the_order(admin_client, sixty_vms):
    page = admin_client.get("/vms/", {"q": "kvm-paging", "ordering": "-name", "per_page": 25}).content.decode()
    assert vm_names(page)[0] == "vm-059"
    assert "q=kvm-paging&amp;ordering=-name&amp;per_page=25&amp;page=2" in page
    assert "60 VMs match the filters" in page


def test_every_list_page_has_the_page_size_chooser(admin_client, sixty_vms):
    for path in ("/clusters/", "/hosts/", "/vms/", "/policies/", "/migrations/", "/audit/"):
        response = admin_client.get(path)
        page = response.content.decode()
        if "Per page" not in page:
            # A list with no row shows no pager; the VMs' does.
            assert path != "/vms/", path
            continue
        assert 'aria-label="100 per page"' in page, path


@pytest.mark.parametrize("path", ["/vms/", "/hosts/", "/clusters/", "/policies/", "/audit/"])
@pytest.mark.parametrize("search", [{}, {"q": "kvm"}])
def test_a_list_page_costs_the_same_queries_at_any_page_size_and_estate_size(
    admin_client, sixty_vms, path, search, django_assert_max_num_queries
):
    with CaptureQueriesContext(connection) as first:
        admin_client.get(path, search)
    more_hosts = [HostFactory(cluster=sixty_vms.cluster) for _ in range(5)]
    VM.objects.bulk_create(
        VM(name=f"more-{n:03}", uuid=uuid.uuid4(), host=more_hosts[n % 5], memory_mib=1024, vcpus=2) for n in range(300)
    )
    for query in ({"per_page": 250}, {"per_page": 25, "page": 2}, {"ordering": "-name"}):
        with django_assert_max_num_queries(len(first)):
            assert admin_client.get(path, {**search, **query}).status_code == 200
