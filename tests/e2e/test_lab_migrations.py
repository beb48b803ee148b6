"""End to end, on the real lab: API -> broker -> a host's Celery worker -> libvirt/QEMU -> database.

Each case starts from the REST API as an admin would, and checks the outcome on the real hosts:
the domain's state in libvirt, the guest's heartbeat on its serial console, and QEMU's own monitor
traffic in the source daemon's log.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from clusters.models import VM, Host
from clusters.services import host_report_capabilities
from config.celery import app as celery_app
from config.embedded_agent import local_agent
from core.models import AuditEntry
from ferry_agent import runner, virt
from migrations_app.agent_services import REFRESH_ACTOR
from migrations_app.models import TERMINAL_STATES, MigrationJob
from migrations_app.tasks import MIGRATE, reconcile
from tests.factories import UserFactory
from tests.worker_fixtures import Worker, vm_of, worker_env

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def inventory_sync(*, host_id: str) -> dict[str, int]:
    """The host's inventory task, run here: the agent's code, in-process through the agent API."""
    return runner.sync_inventory(local_agent(host_id))


ZEROCOPY_ON = '"capability":"zero-copy-send","state":true'
TIMINGS: dict[str, dict] = {}


class LogMark:
    """What a log file gained since this mark."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new_text(self) -> str:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace")


@pytest.fixture
def api(transactional_db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="e2e-admin", is_staff=True, is_superuser=True))
    return client


def start_migration(api, vm, destination) -> str:
    response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "queued"
    return response.json()["id"]


def wait_for_job(job_id: str, *, timeout: float = 180, until=None) -> MigrationJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = MigrationJob.objects.get(pk=job_id)
        if (until or (lambda j: j.state in TERMINAL_STATES))(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is still {job.state} after {timeout} s (progress {job.progress})")


def last_tick(console_log: str) -> int:
    path = Path(console_log)
    ticks = re.findall(r"GUEST: tick (\d+)", path.read_text(errors="replace")) if path.exists() else []
    return int(ticks[-1]) if ticks else 0


def heartbeat_continues(console_log: str, after: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick = last_tick(console_log)
        if tick > after:
            return tick
        time.sleep(0.2)
    raise AssertionError(f"no heartbeat after tick {after} in {console_log}")


def record(name: str, job: MigrationJob, started: float) -> None:
    stats = job.stats or {}
    TIMINGS[name] = {
        "wall_s": round(time.monotonic() - started, 2),
        "migration_s": stats.get("seconds"),
        "downtime_ms": stats.get("downtime_ms"),
        "memory_bps": stats.get("memory_bps"),
        "data_processed": stats.get("data_processed"),
    }
    print(f"\n[e2e] {name}: {TIMINGS[name]}")


def migrate_and_check(api, lab, guest, *, cluster_changes=None, source_capabilities=None, name=""):
    started = time.monotonic()
    vm = vm_of(guest)
    source, destination = vm.host, vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    if cluster_changes:
        response = api.patch(f"/api/clusters/{vm.host.cluster_id}/", cluster_changes, format="json")
        assert response.status_code == 200, response.content
    if source_capabilities is not None:
        # As the source host's agent would report it (only the agent reports capabilities).
        host_report_capabilities(actor=REFRESH_ACTOR, host=source, capabilities=source_capabilities)
    source_log = LogMark(lab.host(source.name)["log"])
    tick_before = last_tick(guest["console_logs"][source.name])
    job = wait_for_job(start_migration(api, vm, destination))
    assert job.state == "succeeded", job.error
    assert job.progress == 100
    vm.refresh_from_db()
    assert vm.host_id == destination.pk and vm.status == "up"
    assert virt.domain_state(lab.uri(destination.name), guest["uuid"]) == "up"
    assert virt.domain_state(lab.uri(source.name), guest["uuid"]) is None
    heartbeat_continues(guest["console_logs"][destination.name], after=tick_before)
    record(name, job, started)
    return job, source_log.new_text()


def test_very_large_vms_migrates_with_zerocopy_on_the_source_qemu(api, lab, lab_cluster):
    job, monitor = migrate_and_check(api, lab, lab["guest"], name="zerocopy")
    assert job.plan["zerocopy"] is True
    # The limits the source's agent reported: no total limit (it ends by its schedule), a pulse.
    reported = job.source_host.capabilities
    assert reported["migration_timeout_s"] is None and reported["migration_pulse_s"] > 0, reported
    assert {"VIR_MIGRATE_ZEROCOPY", "VIR_MIGRATE_PARALLEL"} <= set(job.plan["libvirt"]["flags"])
    assert [d["code"] for d in job.plan["decisions"]] == [
        "parallel_enforced",
        "memtune_limit_not_enforced",  # the lab's tiny hard limit, under a QEMU that runs as root
        "bandwidth_unknown_link_speed",  # loopback has no link speed: the host's own cap applies
        "parallel_fallback",
    ]
    evidence = [line for line in monitor.splitlines() if ZEROCOPY_ON in line]
    assert evidence, "the source QEMU never had zero-copy-send on"
    print(f"[e2e] zero-copy evidence: {evidence[0][:300]}")


def test_with_encryption_no_zerocopy_reaches_libvirt(api, lab, lab_cluster):
    job, monitor = migrate_and_check(
        api, lab, lab["guest"], cluster_changes={"migration_encrypted": "true"}, name="tls"
    )
    assert job.plan["zerocopy"] is False
    assert "VIR_MIGRATE_ZEROCOPY" not in job.plan["libvirt"]["flags"]
    assert "VIR_MIGRATE_TLS" in job.plan["libvirt"]["flags"]
    assert "zerocopy_disabled_encryption" in [d["code"] for d in job.plan["decisions"]]
    assert ZEROCOPY_ON not in monitor
    assert '"tls-creds":"objlibvirt_migrate_tls0"' in monitor  # QEMU migrated over TLS


def test_a_host_without_zerocopy_logs_the_mismatch_and_migrates_anyway(api, lab, lab_cluster):
    vm = vm_of(lab["guest"])
    report = dict(vm.host.capabilities, zerocopy_migrations=False)
    job, monitor = migrate_and_check(api, lab, lab["guest"], source_capabilities=report, name="mismatch")
    decisions = {d["code"]: d["message"] for d in job.plan["decisions"]}
    assert decisions["zerocopy_unsupported_host"] == (
        f"The source host {vm.host.name} does not support zero-copy, so this migration will copy memory normally."
    )
    assert "VIR_MIGRATE_ZEROCOPY" not in job.plan["libvirt"]["flags"]
    assert "VIR_MIGRATE_PARALLEL" in job.plan["libvirt"]["flags"]
    assert ZEROCOPY_ON not in monitor


def slow_migration(api, lab, fresh_guest):
    """A dirtying guest behind a 40 Mbit/s cap: a migration that takes long enough to interrupt."""
    guest = fresh_guest(mem=512, fill=128, dirty=4)
    inventory_sync(host_id=lab.host(guest["host"])["host_uuid"])
    vm = vm_of(guest)
    response = api.patch(
        f"/api/clusters/{vm.host.cluster_id}/",
        {"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": 40},
        format="json",
    )
    assert response.status_code == 200, response.content
    destination = vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    job_id = start_migration(api, vm, destination)
    wait_for_job(job_id, timeout=60, until=lambda j: j.state == "running" and j.progress >= 1)
    return guest, vm, job_id


def test_cancel_during_a_migration_keeps_the_vm_on_the_source(api, lab, lab_cluster, fresh_guest):
    started = time.monotonic()
    guest, vm, job_id = slow_migration(api, lab, fresh_guest)
    response = api.post(f"/api/migrations/{job_id}/cancel/")
    assert response.status_code in (200, 202), response.content
    job = wait_for_job(job_id, timeout=60)
    assert job.state == "cancelled", job.error
    assert virt.domain_state(lab.uri(guest["host"]), guest["uuid"]) == "up"
    vm.refresh_from_db()
    assert vm.host.name == guest["host"] and vm.status == "up"
    heartbeat_continues(guest["console_logs"][guest["host"]], after=last_tick(guest["console_logs"][guest["host"]]))
    record("cancel", job, started)


def test_a_destination_that_dies_fails_the_job_and_the_vm_stays_on_the_source(api, lab, lab_cluster, fresh_guest):
    started = time.monotonic()
    guest, _vm, job_id = slow_migration(api, lab, fresh_guest)
    destination = lab.other(guest["host"])
    lab.kill_host(destination, guest=guest["name"])  # its libvirtd and the incoming QEMU die
    try:
        job = wait_for_job(job_id, timeout=90)
    finally:
        lab.start_host(destination)
    assert job.state == "failed"
    assert job.error["code"] == "migration_failed"
    assert job.error["libvirt_code"] is not None and job.error["message"]
    assert virt.domain_state(lab.uri(guest["host"]), guest["uuid"]) == "up"
    heartbeat_continues(guest["console_logs"][guest["host"]], after=last_tick(guest["console_logs"][guest["host"]]))
    record("destination_killed", job, started)


def test_a_duplicate_delivery_does_not_start_a_second_migration(api, lab, lab_cluster, host_workers):
    """Both deliveries reach the host's worker (whose two pool processes take them at the same
    moment); one claims the job, the other finds it no longer queued. Neither fails: a claim that
    crashed (e.g. "database is locked" on SQLite) would be acked and leave the job to the reconciler."""
    started = time.monotonic()
    vm = vm_of(lab["guest"])
    destination = vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    worker_log = LogMark(host_workers[vm.host.name])
    job_id = start_migration(api, vm, destination)
    duplicate = celery_app.send_task(MIGRATE, args=[str(vm.host_id), job_id], queue=f"host.{vm.host_id}")  # again
    job = wait_for_job(job_id)
    assert job.state == "succeeded", job.error

    finished = re.compile(r"Task ferry\.migrate\[([0-9a-f-]+)\] (succeeded in [\d.]+s: '(\w+)'|raised .*)")
    deadline = time.monotonic() + 30
    while len(finished.findall(worker_log.new_text())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    log = worker_log.new_text()
    received = re.findall(r"Task ferry\.migrate\[([0-9a-f-]+)\] received", log)
    assert len(set(received)) == 2 and duplicate.id in received, f"both deliveries reach the worker:\n{log}"
    outcomes = {task_id: result or failure for task_id, failure, result in finished.findall(log)}
    assert sorted(outcomes.values()) == ["not_queued", "started"], f"one claim wins, the other sees it:\n{log}"
    assert "Traceback" not in log and "raised" not in log, log
    assert AuditEntry.objects.filter(object_id=job_id, action="start").count() == 1
    assert AuditEntry.objects.filter(object_id=job_id, action="succeeded").count() == 1
    record("duplicate_delivery", job, started)


def test_the_workers_migration_timeout_aborts_a_longer_migration(api, lab, lab_cluster, fresh_guest):
    """FERRY_MIGRATION_TIMEOUT_S is read by the worker that runs the migration: a worker started
    with 3 s ends a migration that would take half a minute, and the VM stays where it runs."""
    started = time.monotonic()
    guest = fresh_guest(mem=512, fill=128, dirty=4)
    source = Host.objects.get(name=guest["host"])
    # The same libvirt daemon under a second host row, whose queue only this test's worker serves.
    impatient = Host.objects.create(
        name=f"{source.name}-impatient", cluster=source.cluster, address=source.address,
        libvirt_uri=source.libvirt_uri, peer_uri=source.peer_uri, status="up", capabilities=source.capabilities,
    )  # fmt: skip
    vm, _ = VM.objects.update_or_create(  # a worker's inventory may have recorded the guest already
        uuid=guest["uuid"], defaults={"name": guest["name"], "host": impatient, "memory_mib": 512, "vcpus": 1}
    )
    response = api.patch(
        f"/api/clusters/{source.cluster_id}/",
        {"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": 40},  # 128 MiB: about 30 s
        format="json",
    )
    assert response.status_code == 200, response.content
    worker = Worker("impatient", [f"host.{impatient.pk}"], env=worker_env(FERRY_MIGRATION_TIMEOUT_S="3"))
    try:
        worker.wait_ready()
        job = wait_for_job(start_migration(api, vm, Host.objects.get(name=lab.other(guest["host"]))), timeout=120)
    finally:
        worker.stop()
    assert job.state == "failed", job.error
    assert job.error["code"] == "timeout", job.error
    assert (job.finished_at - job.started_at).total_seconds() < 20
    assert virt.domain_state(lab.uri(guest["host"]), guest["uuid"]) == "up"
    assert virt.domain_state(lab.uri(lab.other(guest["host"])), guest["uuid"]) is None
    record("migration_timeout", job, started)


def test_a_changed_address_the_destination_does_not_own_gets_no_guest_memory(api, lab, lab_cluster):
    """The address attack of issue 11, on the lab: the destination's address changed to another IP.
    The plan sends no migrate_uri, so the destination's own libvirtd picks where QEMU listens, the
    migration succeeds, and QEMU on the destination never listens on the new address."""
    vm = vm_of(lab["guest"])
    destination = vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    response = api.patch(f"/api/hosts/{destination.pk}/", {"address": "127.0.0.99"}, format="json")
    assert response.status_code == 200, response.content
    destination_log = LogMark(lab.host(destination.name)["log"])

    job, _monitor = migrate_and_check(api, lab, lab["guest"], name="address-unverified")

    assert "migrate_uri" not in job.plan["libvirt"]["params"]
    assert "migration_address_unverified" in [d["code"] for d in job.plan["decisions"]]
    incoming = [line for line in destination_log.new_text().splitlines() if "migrate-incoming" in line]
    assert incoming, "the destination QEMU's migrate-incoming command is not in its daemon's log"
    assert not [line for line in incoming if "127.0.0.99" in line], incoming


def test_an_agent_killed_mid_migration_and_started_again_ends_the_job_truthfully(api, lab, lab_cluster, fresh_guest):
    """SIGKILL of the worker that runs a migration: libvirt goes on without it. Once the job's
    heartbeat is older than the timeout, the reconciler asks the host's agent (started again);
    it follows libvirt's migration to its end, or reads the domains, and the job ends in its
    true state within two minutes, with the VM on exactly one host."""
    started = time.monotonic()
    guest = fresh_guest(mem=512, fill=128)  # no dirtying: libvirt finishes it in about 30 s on its own
    source = Host.objects.get(name=guest["host"])
    # The same libvirt daemon under a second host row, whose queue only this test's workers serve.
    killable = Host.objects.create(
        name=f"{source.name}-killable", cluster=source.cluster, address=source.address,
        libvirt_uri=source.libvirt_uri, peer_uri=source.peer_uri, status="up", capabilities=source.capabilities,
    )  # fmt: skip
    vm, _ = VM.objects.update_or_create(  # a worker's inventory may have recorded the guest already
        uuid=guest["uuid"], defaults={"name": guest["name"], "host": killable, "memory_mib": 512, "vcpus": 1}
    )
    response = api.patch(
        f"/api/clusters/{source.cluster_id}/",
        {"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": 40},  # 128 MiB: about 30 s
        format="json",
    )
    assert response.status_code == 200, response.content
    destination = Host.objects.get(name=lab.other(guest["host"]))
    worker = Worker("killable", [f"host.{killable.pk}"]).wait_ready()
    try:
        job_id = start_migration(api, vm, destination)
        wait_for_job(job_id, timeout=60, until=lambda j: j.state == "running" and j.progress >= 1)
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        killed = time.monotonic()
        worker = Worker("killable-again", [f"host.{killable.pk}"]).wait_ready()
        with override_settings(FERRY_HEARTBEAT_TIMEOUT_S=5):
            while time.monotonic() - killed < 120:
                reconcile()
                job = MigrationJob.objects.get(pk=job_id)
                if job.state in TERMINAL_STATES:
                    break
                time.sleep(2)
    finally:
        worker.stop()
    assert job.state in TERMINAL_STATES, f"still {job.state} two minutes after the kill"
    detected_s = time.monotonic() - killed
    where = {name: virt.domain_state(lab.uri(name), guest["uuid"]) for name in lab["hosts"]}
    running = [name for name, state in where.items() if state in ("up", "paused")]
    assert len(running) == 1, where  # the VM runs on exactly one host
    vm.refresh_from_db()
    if job.state == "succeeded":
        assert running == [destination.name] and vm.host_id == destination.pk, (where, job.error)
    else:
        assert running == [guest["host"]] and vm.host_id == killable.pk, (where, job.error)
    assert vm.status == "up"
    print(f"\n[e2e] agent killed: job {job.state} {detected_s:.1f} s after the kill")
    record("agent_killed", job, started)
