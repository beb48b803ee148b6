"""The agent's code against the real agent API: a live Ferry, HttpClient with a real agent token.

No lab here: the host's libvirt is a port where nothing listens, so every libvirt call fails at
once, for real, and the job runs its whole course (claim, the failed call, the finish Ferry
decides) over HTTP. The migration itself is in tests/e2e/test_lab_agents.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from clusters.models import VM, Host
from config.embedded_agent import LocalClient
from core.audit import Actor
from ferry_agent import runner
from ferry_agent.checks import UriPolicy
from ferry_agent.client import HttpClient, Refused
from migrations_app.models import MigrationJob
from migrations_app.services import agent_token_issue
from tests.factories import ClusterFactory, HostFactory, JobFactory, VMFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "qemu+tcp://127.0.0.1:1/system"  # nothing listens: libvirt refuses at once


@pytest.fixture
def hosts():
    cluster = ClusterFactory()
    mine = HostFactory(cluster=cluster, name="hv-http", libvirt_uri=NOWHERE)
    other = HostFactory(cluster=cluster, name="hv-http-other", libvirt_uri=NOWHERE)
    return mine, other


def agent_over_http(live_server, host) -> runner.Agent:
    _, key = agent_token_issue(actor=Actor.task("tests"), host=host)
    client = HttpClient(live_server.url, key, refused_retry_s=0, finish_retry_s=5)
    return runner.Agent(host_id=str(host.pk), client=client, uris=UriPolicy(allow_tcp=True))


def test_an_unreachable_libvirt_is_reported_and_the_host_goes_non_operational(live_server, hosts):
    mine, other = hosts
    answer = runner.refresh_capabilities(agent_over_http(live_server, mine))
    assert answer == {"status": "non_operational"}
    assert Host.objects.get(pk=mine.pk).status == "non_operational"
    assert Host.objects.get(pk=other.pk).status == "up"


def test_a_job_runs_its_course_over_http_and_ferry_decides_its_end(live_server, hosts):
    mine, other = hosts
    vm = VMFactory(host=mine)
    job = JobFactory(vm=vm, destination_host=other)
    assert runner.migrate(agent_over_http(live_server, mine), str(job.pk)) == "started"
    job.refresh_from_db()
    assert job.state == "failed" and job.error["code"] == "migration_failed", job.error
    vm.refresh_from_db()
    assert (vm.host_id, vm.status) == (mine.pk, "up")


def test_another_hosts_job_is_refused_over_http_and_in_process_alike(live_server, hosts):
    mine, other = hosts
    theirs = JobFactory(vm=VMFactory(host=other), destination_host=mine)
    http = agent_over_http(live_server, mine).client
    for client in (http, LocalClient(str(mine.pk))):
        for call in (client.job_claim, client.job_get):
            with pytest.raises(Refused):
                call(str(theirs.pk))
    assert MigrationJob.objects.get(pk=theirs.pk).state == "queued"
    assert http.host_info() == LocalClient(str(mine.pk)).host_info()


def test_an_inventory_over_http_adds_the_hosts_domains(live_server, hosts):
    mine, _ = hosts
    client = agent_over_http(live_server, mine).client
    domain = {"uuid": "6f0d2a39-8f8e-4a7b-9d53-1c1e1c1e1c1e", "name": "g", "state": "up", "memory_mib": 64,
              "vcpus": 1}  # fmt: skip
    assert client.report_inventory({"domains": [domain]})["added"] == 1
    assert VM.objects.get(uuid=domain["uuid"]).host_id == mine.pk


def run_agent_check(live_server, key: str, host: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "FERRY_URL": live_server.url, "FERRY_AGENT_TOKEN": key,
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12"}  # fmt: skip
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "ferry-agent"), "--host", host, "--allow-tcp", "--check"],
        env=env, cwd="/", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_agent_starts_only_with_its_own_hosts_token(live_server, hosts, settings):
    settings.FERRY_HOST_QUEUES = True
    mine, other = hosts
    _, key = agent_token_issue(actor=Actor.task("tests"), host=mine)
    assert run_agent_check(live_server, key, mine.name).returncode == 0
    refused = run_agent_check(live_server, key, other.name)
    assert refused.returncode == 2 and "not of hv-http-other" in refused.stderr, refused.stderr
    stranger = run_agent_check(live_server, "not-a-token", mine.name)
    assert stranger.returncode == 2 and "does not accept" in stranger.stderr, stranger.stderr


def test_the_agent_refuses_a_ferry_that_runs_every_host_on_its_own_worker(live_server, hosts, settings):
    settings.FERRY_HOST_QUEUES = False
    mine, _ = hosts
    _, key = agent_token_issue(actor=Actor.task("tests"), host=mine)
    refused = run_agent_check(live_server, key, mine.name)
    assert refused.returncode == 2 and "FERRY_HOST_QUEUES=false" in refused.stderr, refused.stderr
