"""A long migration on the real lab, through RabbitMQ with a consumer timeout shorter than it.

The agent acknowledges the migrate task when it receives it (ferry_agent.tasks: the claim in Ferry
is the durable record), so a broker's delivery-acknowledgement timeout can neither cut nor repeat
a migration that outlasts it. Here a guest of 2304 MiB, 2 GiB of it filled with non-zero data (a
tmpfs written by the guest's /init, lab/guest-init.sh), migrates behind a cluster bandwidth of
78 Mbit/s (Ferry gives libvirt 9 MiB/s): about 2.2 GiB cross over in about three and three
quarter minutes (225 s measured), on a RabbitMQ node of the test's own whose consumer_timeout is
30 s.

Why a node of its own: the lab's RabbitMQ (3.10) knows only the node-wide consumer_timeout; the
per-queue forms (policy key consumer-timeout, queue argument x-consumer-timeout) came with 3.11.15
and 3.12. The shared broker's settings are never changed, so the test starts its own node
(tests/broker.OwnRabbitMQ), on its own ports and data directory, with consumer_timeout in its
rabbitmq.conf, and stops it afterwards.

Runs with the other lab tests (marker `lab`: root, the lab available, rabbitmq-server installed);
about five and a half minutes in all (the guest boots and fills its RAM in about a minute).
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from rest_framework.test import APIClient

from clusters.models import VM, Host
from ferry_agent import virt
from migrations_app.models import TERMINAL_STATES, MigrationJob
from tests import broker
from tests.factories import UserFactory
from tests.worker_fixtures import Worker, worker_env

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

GUEST_MEM_MIB = 2304  # 2 GiB of filled RAM, plus room for the guest's kernel and its tmpfs
GUEST_FILL_MIB = 2048
MIGRATION_S = 210  # the wanted length of the migration, which sets the bandwidth below
BANDWIDTH_MBPS = GUEST_FILL_MIB * 8 // MIGRATION_S  # 78 Mbit/s: Ferry gives libvirt 78 // 8 = 9 MiB/s
CONSUMER_TIMEOUT_S = 30  # RabbitMQ checks it about once a minute: it strikes within 30-90 s
MIB = 2**20


@pytest.fixture
def own_rabbitmq(tmp_path):
    reason = broker.rabbitmq_server_missing()
    if reason:
        pytest.skip(reason)
    node = broker.OwnRabbitMQ(tmp_path / "rabbitmq", conf=f"consumer_timeout = {CONSUMER_TIMEOUT_S * 1000}\n")
    try:
        yield node.wait_ready()
    finally:
        node.stop()


def test_a_migration_longer_than_rabbitmqs_consumer_timeout_succeeds_with_steady_progress(
    lab, lab_cluster, fresh_guest, own_rabbitmq, monkeypatch
):
    monkeypatch.setenv("LAB_BOOT_TIMEOUT", "300")  # filling 2 GiB under TCG takes a while
    guest = fresh_guest(mem=GUEST_MEM_MIB, fill=GUEST_FILL_MIB)
    source = Host.objects.get(name=guest["host"])
    destination = Host.objects.get(name=lab.other(guest["host"]))
    # The same libvirt daemon under a host row of this test's own: its queue (host.<id>) is on
    # this test's RabbitMQ and served only by this test's worker.
    long_host = Host.objects.create(
        id=uuid.uuid4(), name=f"{source.name}-long", cluster=source.cluster, address=source.address,
        libvirt_uri=source.libvirt_uri, peer_uri=source.peer_uri, status="up", capabilities=source.capabilities,
    )  # fmt: skip
    vm, _ = VM.objects.update_or_create(  # a worker's inventory may have recorded the guest already
        uuid=guest["uuid"],
        defaults={"name": guest["name"], "host": long_host, "memory_mib": GUEST_MEM_MIB, "vcpus": 1},
    )
    api = APIClient()
    api.force_authenticate(UserFactory(username="long-admin", is_staff=True, is_superuser=True))
    response = api.patch(
        f"/api/clusters/{source.cluster_id}/",
        {"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": BANDWIDTH_MBPS},
        format="json",
    )
    assert response.status_code == 200, response.content

    worker = Worker("long-rabbitmq", [f"host.{long_host.pk}"], env=worker_env(CELERY_BROKER_URL=own_rabbitmq.url))
    progress: list[int] = []
    try:
        worker.wait_ready()
        with broker.publishing_to(own_rabbitmq.url):
            response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, format="json")
            assert response.status_code == 202, response.content
            job_id = response.json()["id"]
            deadline = time.monotonic() + MIGRATION_S * 2
            while time.monotonic() < deadline:
                job = MigrationJob.objects.get(pk=job_id)
                progress.append(job.progress)
                if job.state in TERMINAL_STATES:
                    break
                time.sleep(1)
    finally:
        worker.stop()
    log = worker.log.read_text()

    assert job.state == "succeeded", (job.state, job.error, progress[-5:])
    assert job.plan["libvirt"]["params"]["bandwidth"] == BANDWIDTH_MBPS // 8
    seconds = (job.finished_at - job.started_at).total_seconds()
    assert seconds > CONSUMER_TIMEOUT_S + 90, f"the migration took only {seconds:.0f} s: it proves nothing"
    assert seconds < MIGRATION_S * 1.5, f"the migration took {seconds:.0f} s, far beyond the {MIGRATION_S} s aimed at"
    assert job.stats["data_processed"] >= GUEST_FILL_MIB * MIB, job.stats  # the 2 GiB did cross over

    # Progress as Ferry showed it, read every second, and the job's samples: never backwards.
    assert progress == sorted(progress), progress
    assert progress[-1] == 100
    samples = job.samples
    assert len(samples) >= MIGRATION_S // 10, samples  # a sample about every 5 s
    times = [s["t"] for s in samples]
    assert times == sorted(times) and len(set(times)) == len(times), times
    processed = [s["p"] for s in samples if "p" in s]
    assert len(processed) >= len(samples) - 1 and processed == sorted(processed), processed
    assert processed[-1] >= (GUEST_FILL_MIB - 64) * MIB, processed[-1]

    # One delivery, received and run once, through RabbitMQ; the broker never took it back.
    assert "amqp://" in log
    received = re.findall(r"Task ferry\.migrate\[([0-9a-f-]+)\] received", log)
    assert len(received) == 1, log[-3000:]
    assert re.search(r"Task ferry\.migrate\[[0-9a-f-]+\] succeeded in [\d.]+s: 'started'", log), log[-3000:]
    assert "PRECONDITION_FAILED" not in log and "Traceback" not in log, log[-3000:]

    vm.refresh_from_db()
    assert vm.host_id == destination.pk and vm.status == "up"
    assert virt.domain_state(lab.uri(destination.name), guest["uuid"]) == "up"
    assert virt.domain_state(lab.uri(guest["host"]), guest["uuid"]) is None
    print(
        f"\n[e2e] long migration: {seconds:.0f} s at {BANDWIDTH_MBPS // 8} MiB/s, "
        f"{job.stats['data_processed'] / MIB:.0f} MiB, {len(samples)} samples, consumer timeout {CONSUMER_TIMEOUT_S} s"
    )
