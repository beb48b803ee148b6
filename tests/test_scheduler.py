"""The scheduler: Celery beat, as `make run` and the README's default-queue worker run it, asks every
host to report every FERRY_CAPABILITIES_INTERVAL_S, and monitor_hosts sends each host its tasks."""

import os
import signal
import subprocess
import time

import pytest

from migrations_app.tasks import monitor_hosts
from tests import broker
from tests.factories import HostFactory
from tests.worker_fixtures import CELERY, LOG_DIR, REPO, worker_env


@pytest.mark.slow
def test_beat_sends_monitor_hosts_every_capabilities_interval(settings, tmp_path):
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.purge(queue)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "beat.log"
    env = worker_env(FERRY_CAPABILITIES_INTERVAL_S="2")
    with log.open("w") as out:
        beat = subprocess.Popen(
            [CELERY, "-A", "config", "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "schedule")],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    sent: list[broker.Sent] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 60 and [s.task for s in sent].count("ferry.monitor_hosts") < 3:
            assert beat.poll() is None, log.read_text()
            sent += broker.take(queue, wait_s=1)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert [s.task for s in sent].count("ferry.monitor_hosts") >= 3, (sent, log.read_text())
    assert elapsed >= 4, "three sends at a 2 s interval take at least 4 s"
    assert all(s.task in ("ferry.monitor_hosts", "ferry.reconcile") for s in sent), sent


@pytest.mark.django_db
def test_monitor_hosts_asks_every_host_but_those_in_maintenance_on_its_own_queue(settings):
    settings.FERRY_HOST_QUEUES = True
    up, unknown = HostFactory(), HostFactory(status="unknown", capabilities={})
    resting = HostFactory(status="maintenance")

    assert monitor_hosts() == 2

    for host in (up, unknown):
        assert sorted(s.task for s in broker.take(f"host.{host.pk}")) == [
            "ferry.refresh_capabilities",
            "ferry.sync_inventory",
        ]
    assert broker.take(f"host.{resting.pk}", wait_s=0.5) == []
