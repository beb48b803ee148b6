"""End-to-end fixtures: the real lab, registered in Ferry, and one real Celery worker per lab host.

Each worker serves only its host's queue (host.<host id>), as on a hypervisor, on the broker the
suite is configured with (CELERY_BROKER_URL: Redis in CI, the filesystem broker locally), and uses
the test database, so a job goes API -> broker -> worker -> libvirt -> database for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from clusters.models import VM, Cluster, Host
from migrations_app.agent import capabilities_refresh, inventory_sync
from policies.models import VERY_LARGE_VMS_ID

REPO = Path(__file__).resolve().parents[2]
LOG_DIR = REPO / "var" / "e2e"


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _purge(queues: list[str], env: dict) -> None:
    subprocess.run(
        [f"{Path(sys.executable).parent}/celery", "-A", "config", "purge", "-f", "-Q", ",".join(queues)],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="session")
def host_workers(lab, django_db_setup, django_db_blocker):
    """A Celery worker per lab host, started once per session; their logs are in var/e2e/."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATABASE_URL=_database_url(), FERRY_HOST_QUEUES="true", FERRY_LOG_LEVEL="INFO")
    env.setdefault("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
    queues = {name: f"host.{host['host_uuid']}" for name, host in lab["hosts"].items()}
    _purge(list(queues.values()), env)
    workers = {}
    for name, queue in queues.items():
        log = (LOG_DIR / f"worker-{name}.log").open("w")
        workers[name] = (
            subprocess.Popen(
                [
                    f"{Path(sys.executable).parent}/celery",
                    "-A",
                    "config",
                    "worker",
                    "--queues",
                    queue,
                    "--concurrency",
                    "2",
                    "--hostname",
                    f"{name}@ferry-e2e",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
            LOG_DIR / f"worker-{name}.log",
        )
    deadline = time.monotonic() + 60
    for name, (process, log_path) in workers.items():
        while " ready." not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker for {name} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
    yield {name: log_path for name, (_, log_path) in workers.items()}
    for process, _ in workers.values():
        process.send_signal(signal.SIGQUIT)  # cold shutdown: no task is running any more
    for process, _ in workers.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def lab_cluster(lab, host_workers, transactional_db):
    """The lab in Ferry: cluster "lab" at 4.7 with Very large VMs, both hosts reported by the real
    refresh service, and their guests synced from libvirt."""
    cluster = Cluster.objects.create(name="lab", compatibility_version_id="4.7", migration_policy_id=VERY_LARGE_VMS_ID)
    hosts = {}
    for name, entry in lab["hosts"].items():
        host = Host.objects.create(
            id=entry["host_uuid"],
            name=name,
            cluster=cluster,
            address=entry["address"],
            libvirt_uri=entry["libvirt_uri"],
            peer_uri=entry["peer_uri"],
            status="up",
        )
        capabilities_refresh(host_id=str(host.pk))
        inventory_sync(host_id=str(host.pk))
        hosts[name] = Host.objects.get(pk=host.pk)
    return cluster, hosts


def vm_of(guest: dict) -> VM:
    return VM.objects.select_related("host").get(uuid=guest["uuid"])
