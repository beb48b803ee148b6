"""Host monitoring on the real lab: capabilities and inventory, through a real worker and broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from kombu import Connection
from rest_framework.test import APIClient

from clusters.models import VM, Host
from config.embedded_agent import local_agent
from core.models import AuditEntry
from ferry_agent import runner, virt
from tests.factories import UserFactory
from tests.worker_fixtures import REPO, Worker, vm_of, worker_env

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def wait_until(check, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_refresh_from_the_api_reports_real_capabilities(lab, lab_cluster):
    _, hosts = lab_cluster
    host = hosts["hostb"]
    Host.objects.filter(pk=host.pk).update(capabilities={}, capabilities_updated_at=None, status="non_operational")
    client = APIClient()
    client.force_authenticate(UserFactory(username="refresher", is_superuser=True, is_staff=True))
    response = client.post(f"/api/hosts/{host.pk}/refresh/")
    assert response.status_code == 202, response.content
    host = wait_until(
        lambda: Host.objects.filter(pk=host.pk, capabilities_updated_at__isnull=False).first(), what="a report"
    )
    assert host.status == "up"
    assert host.capabilities["libvirt_version"].startswith("9.")
    assert host.capabilities["zerocopy_migrations"] is True
    assert AuditEntry.objects.filter(object_id=str(host.pk), actor="ferry.refresh_capabilities").exists()


SYNC = "ferry.sync_inventory"  # the actor of inventory changes in the audit log


def inventory_sync(*, host_id: str) -> dict[str, int]:
    """The host's inventory task, run here: the agent's code, in-process through the agent API."""
    return runner.sync_inventory(local_agent(host_id))


def test_inventory_follows_domains_that_appear_move_and_vanish(lab, lab_cluster, fresh_guest):
    guest = fresh_guest(fill=16)
    source = Host.objects.get(name=guest["host"])
    destination = Host.objects.get(name=lab.other(guest["host"]))
    assert inventory_sync(host_id=str(source.pk))["added"] == 1
    vm = vm_of(guest)
    assert (vm.name, vm.host_id, vm.status, vm.memory_mib) == (guest["name"], source.pk, "up", 512)
    added = AuditEntry.objects.get(object_id=str(vm.pk), action="create")
    assert (added.actor, added.after["uuid"], added.after["host"]) == (SYNC, guest["uuid"], str(source.pk))

    # Moved behind Ferry's back: the destination may take it over only once the source's own
    # report no longer lists it (until then, its claim is refused and audited).
    virt.migrate(
        source_uri=source.libvirt_uri,
        domain_uuid=guest["uuid"],
        destination_uri=destination.peer_uri,
        flags=["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_PERSIST_DEST", "VIR_MIGRATE_UNDEFINE_SOURCE"],
        params={},
        schedule={"init": [], "stalling": []},
        timeout=120,
        on_progress=lambda report: None,
        should_cancel=lambda: False,
    )
    assert inventory_sync(host_id=str(destination.pk))["refused"] == 1
    assert vm_of(guest).host_id == source.pk
    refused = AuditEntry.objects.filter(object_id=str(vm.pk), action="takeover_refused").get()
    assert (refused.actor, refused.after["reported_by"]) == (SYNC, str(destination.pk))
    assert inventory_sync(host_id=str(source.pk))["vanished"] == 1
    assert inventory_sync(host_id=str(destination.pk))["moved"] == 1
    assert vm_of(guest).host_id == destination.pk
    moved = AuditEntry.objects.filter(object_id=str(vm.pk), action="update").latest("pk")
    assert (moved.actor, moved.before["host"], moved.after["host"]) == (SYNC, str(source.pk), str(destination.pk))
    assert (moved.before["status"], moved.after["status"]) == ("unknown", "up")

    lab.rm_guest(guest["name"])
    assert inventory_sync(host_id=str(destination.pk))["vanished"] == 1
    assert VM.objects.get(uuid=guest["uuid"]).status == "unknown"
    vanished = AuditEntry.objects.filter(object_id=str(vm.pk), action="update").latest("pk")
    assert (vanished.actor, vanished.before, vanished.after) == (SYNC, {"status": "up"}, {"status": "unknown"})


def _rabbitmq_url() -> str | None:
    url = os.environ.get("FERRY_TEST_RABBITMQ_URL")
    if not url:
        return None
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        pytest.fail(f"FERRY_TEST_RABBITMQ_URL is set but RabbitMQ does not answer: {error}")
    return url


def test_a_worker_on_rabbitmq_serves_its_hosts_queue(lab, lab_cluster):
    """The same host task over RabbitMQ: an enqueue in one process, a worker in another."""
    url = _rabbitmq_url()
    if url is None:
        pytest.skip("FERRY_TEST_RABBITMQ_URL is not set (.ci/run sets it)")
    _, hosts = lab_cluster
    host = hosts["hosta"]
    Host.objects.filter(pk=host.pk).update(capabilities={}, capabilities_updated_at=None)
    env = worker_env(CELERY_BROKER_URL=url)
    worker = Worker("rabbitmq", [f"host.{host.pk}"], env=env).wait_ready()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             f"from clusters.models import Host; from migrations_app.tasks import enqueue_refresh_capabilities; "
             f"enqueue_refresh_capabilities(Host.objects.get(pk='{host.pk}'))"],
            env=env, cwd=REPO, check=True, timeout=60,
        )  # fmt: skip
        refreshed = wait_until(
            lambda: Host.objects.filter(pk=host.pk, capabilities_updated_at__isnull=False).first(),
            what="the report over RabbitMQ",
        )
        assert refreshed.capabilities["zerocopy_migrations"] is True
        assert "amqp://" in worker.log.read_text()
    finally:
        worker.stop()


def test_the_reconciler_ends_an_abandoned_job_from_libvirts_real_state(lab, lab_cluster):
    """A job whose task died while running: the source host's agent ends it from the domain's state."""
    from datetime import timedelta

    from django.test import override_settings
    from django.utils import timezone

    from migrations_app.models import MigrationJob
    from migrations_app.selectors import migration_plan
    from migrations_app.tasks import reconcile

    vm = vm_of(lab["guest"])
    destination = vm.host.cluster.hosts.exclude(pk=vm.host_id).get()
    job = MigrationJob.objects.create(
        vm=vm,
        source_host=vm.host,
        destination_host=destination,
        plan=migration_plan(vm=vm, destination=destination).to_dict(),
        state="running",
        started_at=timezone.now() - timedelta(seconds=90),
        heartbeat_at=timezone.now() - timedelta(seconds=90),
        created_at=timezone.now() - timedelta(seconds=90),
    )
    with override_settings(FERRY_HEARTBEAT_TIMEOUT_S=60):
        assert reconcile() == 1
    job = wait_until(
        lambda: MigrationJob.objects.filter(pk=job.pk, finished_at__isnull=False).first(), what="the reconciler"
    )
    assert (job.state, job.error["code"]) == ("failed", "reconciled")
    assert virt.domain_state(vm.host.libvirt_uri, str(vm.uuid)) == "up"
    assert AuditEntry.objects.filter(object_id=str(job.pk), actor="ferry.reconcile").exists()
