"""List pages stay small when the estate is large: object filters over many rows become id boxes."""

import uuid

import pytest

from clusters.models import VM
from core.views import LISTED_CHOICES_MAX
from tests.factories import HostFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_vms():
    host = HostFactory()
    VM.objects.bulk_create(
        VM(name=f"vm-{n:04}", uuid=uuid.uuid4(), host=host, memory_mib=1024, vcpus=2)
        for n in range(LISTED_CHOICES_MAX + 1)
    )
    return host


def test_the_jobs_page_asks_for_a_vm_id_instead_of_listing_every_vm(admin_client, many_vms):
    vm = VM.objects.first()
    job = JobFactory(vm=vm, source_host=many_vms)
    page = admin_client.get("/migrations/").content.decode()
    assert page.count("<option") < LISTED_CHOICES_MAX
    assert 'name="vm"' in page and 'placeholder="VM id"' in page
    filtered = admin_client.get(f"/migrations/?vm={vm.pk}")
    assert filtered.status_code == 200
    assert str(job.pk) in filtered.content.decode()
    other = VM.objects.exclude(pk=vm.pk).first()
    assert str(job.pk) not in admin_client.get(f"/migrations/?vm={other.pk}").content.decode()


@pytest.mark.parametrize("junk", ["not-an-id", str(uuid.uuid4())])
def test_a_bad_id_in_a_large_filter_is_a_message_not_an_error(admin_client, many_vms, junk):
    response = admin_client.get(f"/migrations/?vm={junk}")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_the_vms_page_filters_by_host_ids_when_there_are_many_hosts(admin_client, many_vms):
    for _ in range(LISTED_CHOICES_MAX):
        HostFactory(cluster=many_vms.cluster)
    page = admin_client.get(f"/vms/?host={many_vms.pk}").content.decode()
    assert 'placeholder="host id"' in page
    assert "vm-0000" in page
