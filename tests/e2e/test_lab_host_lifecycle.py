"""The host lifecycle on the real lab (issue 15), beyond the plain evacuation
(test_lab_evacuation.py): an evacuation that cannot finish, Ferry's choice of destination by free
memory with a rerun after a real failure, and the cluster's error handling when a host fails.

Every failure here is real: a libvirtd killed with lab/lab.sh kill-host (its guests keep running),
reported by the host's real agent code (runner.refresh_capabilities), or a destination whose
libvirtd does not listen. The lab has two libvirt hosts; the choice between destinations needs a
third, "hostc": a host record at 127.0.0.4 whose libvirtd is not running (as a hypervisor whose
daemon died after its last report), which reports the most memory and so is chosen first.
"""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from clusters.models import VM, Cluster, Host
from clusters.services import host_report_capabilities
from config.embedded_agent import local_agent
from core.audit import Actor
from ferry_agent import runner, virt
from migrations_app.models import Evacuation, MigrationJob
from tests.factories import UserFactory
from tests.lab_fixtures import STATE as LAB_STATE
from tests.worker_fixtures import LAB_WORKERS, vm_of

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

RUNNING = ("up", "paused", "migrating")


@pytest.fixture
def admin_api():
    api = APIClient()
    api.force_authenticate(UserFactory(username="e2e-admin", is_staff=True, is_superuser=True))
    return api


def running_on(lab, guest: dict) -> list[str]:
    """The lab hosts whose libvirt runs the guest (a guest is never lost, nor on two hosts)."""
    return [name for name in lab["hosts"] if virt.domain_state(lab.uri(name), guest["uuid"], timeout=10) in RUNNING]


def refresh(host: Host) -> Host:
    """The host's agent reads libvirt and reports, as its refresh task does."""
    runner.refresh_capabilities(local_agent(str(host.pk)))
    host.refresh_from_db()
    return host


def wait_for(predicate, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def jobs_ended(**filters) -> bool:
    return not MigrationJob.objects.filter(state__in=("queued", "running"), **filters).exists()


def test_an_evacuation_that_cannot_finish_keeps_the_host_preparing_with_the_reason_and_loses_no_vm(
    lab, lab_cluster, fresh_guest, admin_api, client
):
    _cluster, hosts = lab_cluster
    source_name = lab.where(lab["guest"]["uuid"]) or "hosta"
    other_name = lab.other(source_name)
    source, other = hosts[source_name], hosts[other_name]
    guests = [lab["guest"], fresh_guest(host=source_name, mem=256, fill=32)]
    runner.sync_inventory(local_agent(str(source.pk)))
    lab.kill_host(other_name)  # the only other host's libvirtd dies
    try:
        assert refresh(other).status == "non_operational", other.status_reason
        response = admin_api.post(f"/api/hosts/{source.pk}/maintenance/")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["host"]["status"] == "preparing_for_maintenance"
        reason = body["host"]["status_reason"]
        assert reason["check"] == "evacuation", reason
        for guest in guests:
            assert f"{guest['name']}: no host can take it ({other_name} is non operational)" in reason["message"]
        assert not MigrationJob.objects.filter(evacuation__host=source).exists()
        assert body["evacuation"]["vms_left"] >= len(guests) and body["evacuation"]["moved"] == 0, body
        client.force_login(UserFactory(username="e2e-viewer", is_staff=True, is_superuser=True))
        page = client.get(reverse("clusters:host_detail", args=[source.pk])).content.decode()
        assert "cannot be moved off the host" in page and f"{other_name} is non operational" in page
    finally:
        lab.start_host(other_name)
    source.refresh_from_db()
    assert source.status == "preparing_for_maintenance"
    for guest in guests:  # no VM lost: each still runs, on its host only
        assert running_on(lab, guest) == [source_name], guest["name"]
    # The host is back: asking for maintenance again moves the VMs left, and the host empties.
    try:
        assert refresh(other).status == "up", other.status_reason
        assert admin_api.post(f"/api/hosts/{source.pk}/maintenance/").status_code == 202
        wait_for(lambda: Host.objects.get(pk=source.pk).status == "maintenance", what="maintenance")
        for guest in guests:
            assert running_on(lab, guest) == [other_name], guest["name"]
    finally:
        Host.objects.filter(pk=source.pk).update(status="up", status_reason={})


def add_hostc(cluster: Cluster, like: Host, *, extra_mib: int) -> Host:
    """A third host whose libvirtd is not running, reporting `extra_mib` more memory than `like`."""
    hostc = Host.objects.create(
        cluster=cluster,
        name="hostc",
        address="127.0.0.4",
        libvirt_uri=f"qemu:///system?socket={LAB_STATE.parent}/hostc/run/libvirt/libvirt-sock",
        peer_uri="qemu+tcp://127.0.0.4/system",
    )
    capabilities = dict(like.capabilities, memory_mib=like.capabilities["memory_mib"] + extra_mib)
    capabilities["addresses"] = ["127.0.0.4"]
    return host_report_capabilities(actor=Actor.task("test"), host=hostc, capabilities=capabilities)


def test_ferry_chooses_the_host_with_most_free_memory_and_reruns_a_real_failure_on_the_next(
    lab, lab_cluster, admin_api
):
    cluster, hosts = lab_cluster
    guest = lab["guest"]
    source_name = lab.where(guest["uuid"]) or "hosta"
    source, other = hosts[source_name], hosts[lab.other(source_name)]
    hostc = add_hostc(cluster, other, extra_mib=0)
    # Same reported memory: a VM recorded on hostc takes its memory there, so the free memory differs.
    other_vm_mib = 2048
    VM.objects.create(
        name="hostc-resident", uuid="00000000-0000-4000-8000-0000000000c1", host=hostc, memory_mib=other_vm_mib, vcpus=1
    )
    preview = admin_api.post(f"/api/vms/{vm_of(guest).pk}/migrate/", {}, format="json")
    assert preview.status_code == 202, preview.content
    first = MigrationJob.objects.get(pk=preview.json()["id"])
    assert first.destination_host_id == other.pk, "the host with more free memory is chosen"
    decision = first.plan["decisions"][0]
    assert decision["code"] == "destination_chosen" and other.name in decision["message"], decision
    wait_for(lambda: jobs_ended(vm=vm_of(guest)), what="the first migration")
    first.refresh_from_db()
    assert first.state == "succeeded", first.error
    assert running_on(lab, guest) == [other.name]
    # Now hostc has the most free memory (it reports 64 GiB more): chosen first, and its libvirtd
    # does not answer, so the migration fails for real and is run again on the next host.
    VM.objects.filter(host=hostc).delete()
    host_report_capabilities(
        actor=Actor.task("test"),
        host=hostc,
        capabilities=dict(hostc.capabilities, memory_mib=hostc.capabilities["memory_mib"] + 64 * 1024),
    )
    response = admin_api.post(f"/api/vms/{vm_of(guest).pk}/migrate/", {}, format="json")
    assert response.status_code == 202, response.content
    failed = MigrationJob.objects.get(pk=response.json()["id"])
    assert failed.destination_host_id == hostc.pk and failed.automatic
    wait_for(lambda: MigrationJob.objects.filter(rerun_of=failed).exists() or jobs_ended(pk=failed.pk), what="rerun")
    wait_for(lambda: jobs_ended(vm=vm_of(guest)), what="the rerun")
    failed.refresh_from_db()
    assert failed.state == "failed", failed.state
    assert "127.0.0.4" in (failed.error or {}).get("message", ""), failed.error
    rerun = MigrationJob.objects.get(rerun_of=failed)
    assert rerun.state == "succeeded", rerun.error
    assert rerun.destination_host_id == source.pk  # the next host: the only one left with room
    assert "to run the migration again after it failed to hostc" in rerun.plan["decisions"][0]["message"]
    assert running_on(lab, guest) == [source.name]
    assert vm_of(guest).host_id == source.pk


@pytest.mark.parametrize("handling", ["migrate", "migrate_highly_available", "do_not_migrate"])
def test_a_host_whose_libvirtd_dies_has_its_vms_moved_as_the_cluster_says(lab, lab_cluster, fresh_guest, handling):
    """The trigger (README, "When a host fails"): the host was up and its own agent reports that
    libvirt does not answer (libvirtd killed; its guests keep running). The migrations Ferry then
    sends wait in the broker while the source's worker is held, and run once libvirtd is back."""
    cluster, hosts = lab_cluster
    Cluster.objects.filter(pk=cluster.pk).update(error_handling=handling)
    source_name = lab.where(lab["guest"]["uuid"]) or "hosta"
    other_name = lab.other(source_name)
    source = hosts[source_name]
    plain, ha = lab["guest"], fresh_guest(host=source_name, mem=256, fill=32)
    runner.sync_inventory(local_agent(str(source.pk)))
    VM.objects.filter(uuid=ha["uuid"]).update(highly_available=True)
    VM.objects.filter(uuid=plain["uuid"]).update(highly_available=False)
    with LAB_WORKERS[source_name].held():
        lab.kill_host(source_name)
        try:
            assert refresh(source).status == "non_operational"
            assert source.status_reason["check"] == "libvirt_connection", source.status_reason
        finally:
            lab.start_host(source_name)
    jobs = MigrationJob.objects.filter(evacuation__host=source, evacuation__trigger="error_handling")
    expected = {
        "migrate": {plain["uuid"], ha["uuid"]},
        "migrate_highly_available": {ha["uuid"]},
        "do_not_migrate": set(),
    }
    assert {str(job.vm.uuid) for job in jobs} == expected[handling]
    wait_for(lambda: jobs_ended(evacuation__host=source), what="the error handling's migrations")
    ended = list(jobs.all())  # read again: the set above was read while they were queued
    assert all(job.state == "succeeded" for job in ended), [(job.state, job.error) for job in ended]
    for guest in (plain, ha):
        where = other_name if guest["uuid"] in expected[handling] else source_name
        assert running_on(lab, guest) == [where], (guest["name"], handling)
        assert vm_of(guest).host_id == hosts[where].pk
    if expected[handling]:
        evacuation = Evacuation.objects.get(host=source)
        assert evacuation.outcome == "done" and evacuation.vm_count == len(expected[handling])
    else:
        assert not Evacuation.objects.filter(host=source).exists()
    assert refresh(source).status == "up"  # libvirtd is back: the next report brings the host up
