"""End to end, with agents that hold no key to the estate (issue 12).

Each lab host's agent is a real `ferry-agent` process started with `env -i` and nothing but
FERRY_URL, FERRY_AGENT_TOKEN, CELERY_BROKER_URL (a Redis database of this test's own) and PATH:
no DATABASE_URL, no Django secret. Ferry is a live web server on the test database, with
FERRY_HOST_QUEUES=true, so each host's tasks reach only its own agent. The agents report their
hosts and the guest over the agent API, and a migration asked for through the API runs on the
agent of its source host and succeeds with zero-copy, as QEMU's own monitor traffic shows.

    sudo LAB_ID=h12 .venv/bin/pytest tests/e2e/test_lab_agents.py -q -p no:cacheprovider
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path

import pytest
from django.core.management import call_command
from kombu import Connection
from rest_framework.test import APIClient

from clusters.models import VM, Host
from clusters.services import cluster_create, host_create
from core.audit import Actor
from ferry_agent import virt
from migrations_app.models import TERMINAL_STATES, MigrationJob
from migrations_app.tasks import reconcile
from policies.models import VERY_LARGE_VMS_ID
from tests import broker
from tests.factories import UserFactory
from tests.lab_fixtures import STATE

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / ".venv" / "bin" / "ferry-agent"
LOG_DIR = REPO / "var" / "test-workers"
#: A Redis database of this test's own (the suite's broker may be Redis database 0).
REDIS_URL = os.environ.get("FERRY_TEST_AGENT_REDIS_URL", "redis://127.0.0.1:6379/12")
ZEROCOPY_ON = '"capability":"zero-copy-send","state":true'
ACTOR = Actor.task("tests")


def wait_until(check, *, timeout: float, what: str, logs: list[Path] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tails = "\n".join(f"--- {log}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


class AgentProcess:
    """`ferry-agent --host <name>` in an environment of exactly four variables."""

    def __init__(self, host: Host, key: str, ferry_url: str, socket_dir: Path, broker_url: str):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log = LOG_DIR / f"agent-{host.name}.log"
        self.env = {"PATH": os.environ["PATH"], "FERRY_URL": ferry_url, "FERRY_AGENT_TOKEN": key,
                    "CELERY_BROKER_URL": broker_url}  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                ["env", "-i", *(f"{k}={v}" for k, v in self.env.items()), str(AGENT), "--host", host.name,
                 "--allow-tcp", "--socket-dir", str(socket_dir), "--concurrency", "2"],
                cwd="/", stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def ready(self) -> bool:
        assert self.process.poll() is None, f"the agent exited:\n{self.log.read_text()[-3000:]}"
        return " ready." in self.log.read_text(errors="replace")

    def environment(self) -> set[str]:
        """The names of the variables the agent's process has (env execs the script, which execs
        Python: the same process)."""
        raw = Path(f"/proc/{self.process.pid}/environ").read_bytes()
        return {item.split(b"=", 1)[0].decode() for item in raw.split(b"\0") if item}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # cold shutdown: the test waited for its job
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception:
        return False
    return True


@pytest.fixture
def redis_broker(tmp_path):
    """The agents' Redis: REDIS_URL when it answers, else a private redis-server started here."""
    server = None
    url = REDIS_URL
    if not _answers(url):
        if os.environ.get("FERRY_TEST_AGENT_REDIS_URL"):
            pytest.fail(f"FERRY_TEST_AGENT_REDIS_URL={url} does not answer")
        if shutil.which("redis-server") is None:
            msg = "!!! REAL LIBVIRT LAB TESTS SKIPPED: no Redis answers and redis-server is not installed !!!"
            warnings.warn(msg, stacklevel=1)
            pytest.skip(msg)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: _answers(url), timeout=20, what=f"a private redis-server on port {port}")
    try:
        with broker.publishing_to(url):
            yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)


def test_agents_without_database_access_run_a_zero_copy_migration(
    lab, fresh_guest, live_server, redis_broker, settings, lab_uris
):
    started = time.monotonic()
    settings.FERRY_HOST_QUEUES = True
    cluster = cluster_create(
        actor=ACTOR,
        data={"name": "agents-lab", "compatibility_version_id": "4.7", "migration_policy_id": VERY_LARGE_VMS_ID},
    )
    # Hosts of their own (fresh ids: queues no other worker of the suite serves) on the lab's daemons.
    hosts = {}
    for name, entry in lab["hosts"].items():
        data = {key: entry[key] for key in ("address", "libvirt_uri", "peer_uri")}
        data |= {"id": uuid.uuid4(), "name": f"agent-{name}", "cluster": cluster, "status": "up"}
        hosts[name] = host_create(actor=ACTOR, data=data)
    agents = {}
    for name, host in hosts.items():
        out = io.StringIO()
        call_command("agent_token", host.name, stdout=out)
        key = out.getvalue().splitlines()[-1]
        agents[name] = AgentProcess(host, key, live_server.url, STATE.parent, redis_broker)
    logs = [agent.log for agent in agents.values()]
    try:
        wait_until(lambda: all(agent.ready() for agent in agents.values()), timeout=60, what="both agents", logs=logs)
        for agent in agents.values():
            # Exactly the four (and PWD, which the ferry-agent wrapper's shell sets).
            assert agent.environment() - {"PWD"} == set(agent.env), agent.environment()
        guest = fresh_guest(host="hosta")
        source, destination = hosts["hosta"], hosts["hostb"]

        api = APIClient()
        api.force_authenticate(UserFactory(username="agents-admin", is_staff=True, is_superuser=True))
        for host in hosts.values():
            assert api.post(f"/api/hosts/{host.pk}/refresh/").status_code == 202
        # The agents' reports, through the agent API: capabilities, and the guest on its host.
        wait_until(
            lambda: Host.objects.filter(pk__in=[h.pk for h in hosts.values()], capabilities__zerocopy_migrations=True)
            .count() == 2 and VM.objects.filter(uuid=guest["uuid"], host=source).exists(),
            timeout=60, what="both hosts' reports", logs=logs,
        )  # fmt: skip
        vm = VM.objects.get(uuid=guest["uuid"])

        source_log = Path(lab.host("hosta")["log"])
        offset = source_log.stat().st_size
        response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        job = wait_until(
            lambda: MigrationJob.objects.filter(pk=job_id, state__in=TERMINAL_STATES).first(),
            timeout=120, what="the migration", logs=logs,
        )  # fmt: skip
        assert job.state == "succeeded", (job.error, agents["hosta"].log.read_text()[-3000:])
        assert job.plan["zerocopy"] is True
        assert {"VIR_MIGRATE_ZEROCOPY", "VIR_MIGRATE_PARALLEL"} <= set(job.plan["libvirt"]["flags"])
        with source_log.open("rb") as handle:
            handle.seek(offset)
            assert ZEROCOPY_ON in handle.read().decode(errors="replace"), "the source QEMU never had zero-copy on"
        vm.refresh_from_db()
        assert (vm.host_id, vm.status) == (destination.pk, "up")
        assert virt.domain_state(lab.uri("hostb"), guest["uuid"]) == "up"
        assert virt.domain_state(lab.uri("hosta"), guest["uuid"]) is None
        # The source's agent ran it; the destination's agent never saw the job.
        assert job_id in agents["hosta"].log.read_text() and job_id not in agents["hostb"].log.read_text()
        print(f"\n[e2e] agents without database: migration in {job.stats.get('seconds')} s, "
              f"test in {time.monotonic() - started:.1f} s")  # fmt: skip
    finally:
        for agent in agents.values():
            agent.stop()


class PrivateRedis:
    """A redis-server of this test's own, on its own port: stopped and started again by the test
    (never the machine's shared one)."""

    def __init__(self, directory: Path):
        if shutil.which("redis-server") is None:
            msg = "!!! REAL LIBVIRT LAB TESTS SKIPPED: redis-server is not installed !!!"
            warnings.warn(msg, stacklevel=1)
            pytest.skip(msg)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: _answers(self.url), timeout=20, what=f"the private redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)


def test_the_broker_down_before_and_during_a_migration_loses_nothing(
    lab, fresh_guest, live_server, settings, lab_uris, tmp_path
):
    """Migrate while the agents' broker is down: accepted and waiting; the broker back: the job
    runs. The broker stopped again during the migration and started again: the migration (whose
    reports go to Ferry over HTTP, not through the broker) goes on, and the job ends truthfully."""
    settings.FERRY_HOST_QUEUES = True
    redis = PrivateRedis(tmp_path)
    redis.start()
    cluster = cluster_create(
        actor=ACTOR,
        data={"name": "broker-lab", "compatibility_version_id": "4.7", "migration_policy_id": VERY_LARGE_VMS_ID,
              "migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": 40},  # 128 MiB: about 30 s
    )  # fmt: skip
    hosts = {}
    for name, entry in lab["hosts"].items():
        data = {key: entry[key] for key in ("address", "libvirt_uri", "peer_uri")}
        data |= {"id": uuid.uuid4(), "name": f"broker-{name}", "cluster": cluster, "status": "up"}
        hosts[name] = host_create(actor=ACTOR, data=data)
    agents = {}
    with broker.publishing_to(redis.url):
        try:
            for name, host in hosts.items():
                out = io.StringIO()
                call_command("agent_token", host.name, stdout=out)
                agents[name] = AgentProcess(host, out.getvalue().splitlines()[-1], live_server.url, STATE.parent,
                                            redis.url)  # fmt: skip
            logs = [agent.log for agent in agents.values()]
            wait_until(lambda: all(a.ready() for a in agents.values()), timeout=60, what="both agents", logs=logs)
            guest = fresh_guest(host="hosta", mem=512, fill=128)
            source, destination = hosts["hosta"], hosts["hostb"]
            api = APIClient()
            api.force_authenticate(UserFactory(username="broker-admin", is_staff=True, is_superuser=True))
            for host in hosts.values():
                assert api.post(f"/api/hosts/{host.pk}/refresh/").status_code == 202
            wait_until(
                lambda: VM.objects.filter(uuid=guest["uuid"], host=source).exists()
                and Host.objects.filter(pk__in=[h.pk for h in hosts.values()], status="up").count() == 2,
                timeout=60, what="both hosts' reports", logs=logs,
            )  # fmt: skip
            vm = VM.objects.get(uuid=guest["uuid"])

            redis.stop()  # the broker is down when the migration is asked for
            response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, format="json")
            assert response.status_code == 202, response.content
            job_id = response.json()["id"]
            waiting = api.get(f"/api/migrations/{job_id}/").json()
            assert waiting["state"] == "queued" and "broker" in waiting["waiting"], waiting
            redis.start()  # back: the scheduler's next round sends it
            reconcile()
            wait_until(
                lambda: MigrationJob.objects.filter(pk=job_id, state="running", progress__gte=1).exists(),
                timeout=60, what="the migration to run", logs=logs,
            )  # fmt: skip

            redis.stop()  # and down again in the middle of the migration
            time.sleep(8)
            redis.start()
            job = wait_until(
                lambda: MigrationJob.objects.filter(pk=job_id, state__in=TERMINAL_STATES).first(),
                timeout=150, what="the migration to end", logs=logs,
            )  # fmt: skip
            assert job.state == "succeeded", (job.error, agents["hosta"].log.read_text()[-3000:])
            vm.refresh_from_db()
            assert (vm.host_id, vm.status) == (destination.pk, "up")
            assert virt.domain_state(lab.uri("hostb"), guest["uuid"]) == "up"
            assert virt.domain_state(lab.uri("hosta"), guest["uuid"]) is None
        finally:
            for agent in agents.values():
                agent.stop()
            redis.stop()
