"""End to end on the real lab: an unchanged ovirtsdk4 script migrates a real VM.

The SDK talks to a live Ferry server; the job goes broker -> the source host's Celery worker ->
libvirt/QEMU -> database, as every lab migration does; the script polls the job by its correlation
id and then the VM, as oVirt's Ansible modules do, and the guest ends up running on the destination.
"""

from __future__ import annotations

import time
import uuid

import pytest

from ferry_agent import virt
from migrations_app.models import JobState, MigrationJob
from tests.factories import UserFactory
from tests.ovirt_api.conftest import PASSWORD
from tests.worker_fixtures import vm_of

sdk = pytest.importorskip("ovirtsdk4", reason="the oVirt SDK is installed by `make setup` (requirements-ovirt-sdk.txt)")
types = pytest.importorskip("ovirtsdk4.types")

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_sdk_script_migrates_a_real_vm_to_the_host_it_names(live_server, lab, lab_cluster):
    UserFactory(username="ovirt-script", is_staff=True, is_superuser=True)
    guest = lab["guest"]
    source_name = vm_of(guest).host.name
    destination_name = lab.other(source_name)
    correlation_id = str(uuid.uuid4())
    connection = sdk.Connection(
        url=f"{live_server.url}/ovirt-engine/api", username="ovirt-script@internal", password=PASSWORD, timeout=60
    )
    try:
        system = connection.system_service()
        (vm,) = system.vms_service().list(search=f"name={vm_of(guest).name} and status=up")
        assert connection.follow_link(vm.host).name == source_name

        system.vms_service().vm_service(vm.id).migrate(
            host=types.Host(name=destination_name), query={"correlation_id": correlation_id}
        )

        deadline = time.monotonic() + 240
        while True:
            jobs = system.jobs_service().list(search=f"correlation_id={correlation_id}")
            assert len(jobs) == 1
            if jobs[0].status != types.JobStatus.STARTED or time.monotonic() > deadline:
                break
            time.sleep(1)
        stored = MigrationJob.objects.get(correlation_id=correlation_id)
        assert jobs[0].status == types.JobStatus.FINISHED, (stored.state, stored.error)
        assert stored.state == JobState.SUCCEEDED and stored.created_by.username == "ovirt-script"
        moved = system.vms_service().vm_service(vm.id).get()
        assert moved.status == types.VmStatus.UP
        assert connection.follow_link(moved.host).name == destination_name
    finally:
        connection.close()
    assert virt.domain_state(lab.uri(destination_name), guest["uuid"]) == "up"
    assert virt.domain_state(lab.uri(source_name), guest["uuid"]) is None
