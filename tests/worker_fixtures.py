"""Real Celery workers for tests: each serves its hosts' queues, on the suite's broker and database.

A job then goes page or API -> broker -> worker -> libvirt -> database for real. The workers are
`make run`'s embedded agent worker (config.embedded_agent: the agent's code, reaching Ferry's state
in-process through the agent API's services), one per host queue as on a hypervisor; the
agents-without-database set-up (ferry-agent over HTTP) has its own test in tests/e2e. The broker is
CELERY_BROKER_URL (Redis in CI, the filesystem broker locally); the database is the test database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from clusters.models import VM, Cluster, Host
from policies.models import VERY_LARGE_VMS_ID
from tests.lab_fixtures import STATE as LAB_STATE

REPO = Path(__file__).resolve().parents[1]
LOG_DIR = REPO / "var" / "test-workers"
CELERY = str(Path(sys.executable).parent / "celery")


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


LAB_HOST_CAP_MIB_S = "100000"
#: The lab's hosts are reached over qemu+tcp:// and UNIX sockets under var/lab (ferry_common/uris.py refuses
#: both unless allowed): `make lab` allows them in var/ferry.env, the tests that use the lab here.
LAB_URI_SETTINGS = {"FERRY_LIBVIRT_ALLOW_TCP": True, "FERRY_LIBVIRT_SOCKET_DIRS": [str(LAB_STATE.parent)]}


def worker_env(**overrides: str) -> dict[str, str]:
    """A test worker stands in for the lab's hypervisors: it allows the lab's URIs."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        FERRY_HOST_QUEUES="true",
        FERRY_LOG_LEVEL="INFO",
        FERRY_LIBVIRT_ALLOW_TCP="true",
        FERRY_LIBVIRT_SOCKET_DIRS=str(LAB_STATE.parent),
    )
    env.setdefault("FERRY_MIGRATION_PULSE_S", "1")  # the schedule's pulse: 10 s in production
    env.setdefault("FERRY_HOST_MAX_BANDWIDTH_MIB_S", LAB_HOST_CAP_MIB_S)  # see lab_cluster
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' allowance, never a worker's
    env.setdefault("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
    return env | overrides


class Worker:
    """One `celery worker` process serving the given queues; its log is in var/test-workers/."""

    def __init__(self, name: str, queues: list[str], env: dict[str, str] | None = None):
        self.name = name
        self.env = env or worker_env()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log = LOG_DIR / f"worker-{name}.log"
        subprocess.run(
            [CELERY, "-A", "config", "purge", "-f", "-Q", ",".join(queues)],
            env=self.env, cwd=REPO, capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [CELERY, "-A", "config.embedded_agent", "worker", "--queues", ",".join(queues), "--concurrency", "2",
                 "--hostname", f"{name}@ferry-tests", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the Celery worker {self.name} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    @contextlib.contextmanager
    def held(self):
        """SIGSTOP the worker (and its pool) for the block, SIGCONT after: messages sent to its
        queue meanwhile wait in the broker, as for a hypervisor's agent that is busy."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # cold shutdown: tests wait for their jobs
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


#: host_workers' Worker of each lab host, while the session has them.
LAB_WORKERS: dict[str, Worker] = {}


@pytest.fixture(scope="session")
def host_workers(lab, django_db_setup, django_db_blocker):
    """A worker per lab host, serving only that host's queue, as on a hypervisor."""
    workers = {name: Worker(name, [f"host.{host['host_uuid']}"]) for name, host in lab["hosts"].items()}
    for worker in workers.values():
        worker.wait_ready()
    LAB_WORKERS.update(workers)
    yield {name: worker.log for name, worker in workers.items()}
    LAB_WORKERS.clear()
    for worker in workers.values():
        worker.stop()


@pytest.fixture
def lab_uris(settings):
    """Ferry's allow-list with the lab's allowances, as `make lab` sets them."""
    for name, value in LAB_URI_SETTINGS.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def lab_cluster(lab, host_workers, transactional_db, lab_uris):
    """The lab in Ferry, registered by `manage.py lab_register` as `make lab` does: cluster "lab"
    at 4.7 with Very large VMs, both hosts reported by the real refresh service, and their guests
    synced from libvirt. Loopback reports no link speed, so the hosts' own cap applies: set high
    here (as in worker_env), so that the lab's short migrations run at the machine's speed."""
    lab_uris.FERRY_HOST_MAX_BANDWIDTH_MIB_S = int(LAB_HOST_CAP_MIB_S)
    if lab.get("guest") is None or lab.where(lab["guest"]["uuid"]) is None:
        lab.guest("labvm")  # an earlier test may have lost it; every test starts with it running
    out = StringIO()
    call_command("lab_register", stdout=out)  # as `make lab` runs it: the lab that LAB_ID names
    assert "Lab registered in cluster 'lab'." in out.getvalue(), out.getvalue()
    cluster = Cluster.objects.get(name="lab")
    assert (cluster.compatibility_version_id, cluster.migration_policy_id) == ("4.7", VERY_LARGE_VMS_ID)
    hosts = {name: Host.objects.get(pk=entry["host_uuid"], name=name) for name, entry in lab["hosts"].items()}
    assert all(host.status == "up" and host.capabilities for host in hosts.values()), out.getvalue()
    return cluster, hosts


def vm_of(guest: dict) -> VM:
    return VM.objects.select_related("host").get(uuid=guest["uuid"])
