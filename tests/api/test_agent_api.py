"""The agent API (docs/agent-api.md): an agent token acts for its own host only, on /api/agent/ only.

Every refusal is checked in the database too: a 403 or a 400 changes nothing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import uuid

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from clusters.models import VM, Host
from core.audit import Actor
from core.models import AuditEntry
from migrations_app.models import AgentToken, MigrationJob
from migrations_app.services import agent_key_hash, agent_token_issue
from tests.factories import ClusterFactory, HostFactory, JobFactory, VMFactory

pytestmark = pytest.mark.django_db

CAPABILITIES = {
    "libvirt_version": "10.0.0",
    "qemu_version": "8.2.0",
    "agent_version": "1.0.0",
    "zerocopy_migrations": True,
    "parallel_migrations": True,
    "cpu_count": 8,
    "memory_mib": 32768,
    "link_speed_mbps": 10000,
}
FINISHED = {
    "result": {
        "ok": True,
        "error_code": None,
        "error_message": None,
        "cancelled": False,
        "timed_out": False,
        "aborted_by_schedule": False,
        "stats": {"downtime": 12},
        "seconds": 3.5,
        "actions": [],
    },
    "source_state": None,
    "destination_state": "up",
}


def agent_client(host) -> APIClient:
    _, key = agent_token_issue(actor=Actor.task("tests"), host=host)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def domain(vm_uuid, name="guest", state="up") -> dict:
    return {"uuid": str(vm_uuid), "name": name, "state": state, "memory_mib": 1024, "vcpus": 2}


def everything() -> tuple:
    """What a refused request must leave as it was: every row the agent API could write."""
    return (
        sorted((str(h.pk), h.status, h.version, str(h.capabilities)) for h in Host.objects.all()),
        sorted((str(v.uuid), v.host_id.hex, v.status, v.version, v.name) for v in VM.objects.all()),
        sorted((str(j.pk), j.state, j.progress, str(j.stats), j.error is None) for j in MigrationJob.objects.all()),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def two_hosts():
    cluster = ClusterFactory()
    mine, other = HostFactory(cluster=cluster, name="hv-mine"), HostFactory(cluster=cluster, name="hv-other")
    third = HostFactory(cluster=cluster, name="hv-third")
    return mine, other, third


# ---------------------------------------------------------------------------------- credentials
def test_the_command_prints_a_new_token_whose_key_is_the_last_line_and_the_previous_stops_working(two_hosts):
    mine, *_ = two_hosts
    first, second = io.StringIO(), io.StringIO()
    call_command("agent_token", mine.name, stdout=first)
    call_command("agent_token", str(mine.pk), stdout=second)
    old_key, new_key = first.getvalue().splitlines()[-1], second.getvalue().splitlines()[-1]
    assert old_key != new_key and len(new_key) >= 43
    assert AgentToken.objects.get(host=mine).key_hash == agent_key_hash(new_key)

    old, new = APIClient(), APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    new.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert old.get("/api/agent/host/").status_code == 403
    assert new.get("/api/agent/host/").json() == {
        "id": str(mine.pk),
        "name": "hv-mine",
        "libvirt_uri": mine.libvirt_uri,
        "address": mine.address,
        "queue": f"host.{mine.pk}",
    }
    entries = AuditEntry.objects.filter(object_id=str(mine.pk), action="agent_token")
    assert entries.count() == 2
    assert all(new_key not in str(entry.after) and old_key not in str(entry.after) for entry in entries)


def test_no_key_is_in_a_database_dump(two_hosts):
    mine, other, _ = two_hosts
    keys = [agent_token_issue(actor=Actor.task("tests"), host=host)[1] for host in (mine, other)]
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert '"migrations_app.agenttoken"' in dump.getvalue()
    assert all(key not in dump.getvalue() for key in keys)


def test_admins_issue_a_token_from_the_api_once_and_it_works(admin_client, two_hosts):
    mine, *_ = two_hosts
    response = admin_client.post(f"/api/hosts/{mine.pk}/agent-token/")
    assert response.status_code == 201, response.content
    key = response.json()["key"]
    assert set(response.json()) == {"key", "created"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/agent/host/").json()["id"] == str(mine.pk)
    assert key not in str(list(AuditEntry.objects.values_list("before", "after")))


def test_the_host_page_issues_a_token_for_admins_and_shows_it_once(admin_client, client, two_hosts):
    mine, *_ = two_hosts
    page = admin_client.get(f"/hosts/{mine.pk}/")
    assert f"/hosts/{mine.pk}/agent-token/" in page.content.decode()
    assert admin_client.get(f"/hosts/{mine.pk}/agent-token/").status_code == 405
    response = admin_client.post(f"/hosts/{mine.pk}/agent-token/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = response.context["key"]
    assert key in response.content.decode()
    assert AgentToken.objects.get(host=mine).key_hash == agent_key_hash(key)


def test_the_page_action_needs_change_host(client, two_hosts, django_user_model):
    from django.contrib.auth.models import Group

    from core.roles import OPERATOR_GROUP, roles_ensure

    mine, *_ = two_hosts
    roles_ensure()
    operator = django_user_model.objects.create_user("op", password="x")
    operator.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    client.force_login(operator)
    assert f"/hosts/{mine.pk}/agent-token/" not in client.get(f"/hosts/{mine.pk}/").content.decode()
    assert client.post(f"/hosts/{mine.pk}/agent-token/").status_code == 403
    assert not AgentToken.objects.exists()


def test_the_page_action_needs_csrf(two_hosts, admin_user):
    from django.test import Client

    mine, *_ = two_hosts
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post(f"/hosts/{mine.pk}/agent-token/").status_code == 403
    assert not AgentToken.objects.exists()


def test_only_an_agent_token_is_accepted_on_the_agent_api(two_hosts, admin_user, admin_client):
    from tests.api.conftest import token_client

    with_user_token = token_client(admin_user)  # a user's API token, a superuser's at that
    anonymous = APIClient()
    assert anonymous.get("/api/agent/host/").status_code == 401
    assert with_user_token.get("/api/agent/host/").status_code == 403
    assert admin_client.get("/api/agent/host/").status_code in (401, 403)  # a superuser's session
    garbage = APIClient()
    garbage.credentials(HTTP_AUTHORIZATION="Bearer something")
    assert garbage.get("/api/agent/host/").status_code == 403


def test_an_agent_token_opens_nothing_but_the_agent_api(two_hosts):
    mine, *_ = two_hosts
    agent = agent_client(mine)
    for url in ("/api/hosts/", f"/api/hosts/{mine.pk}/", "/api/vms/", "/api/migrations/", "/api/audit-log/"):
        assert agent.get(url).status_code in (401, 403), url
    assert agent.post(f"/api/hosts/{mine.pk}/refresh/").status_code in (401, 403)


def test_the_agent_api_is_not_in_the_public_schema(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/agent/" not in schema.content.decode()


# ---------------------------------------------------------------------------------- reports
def test_a_capabilities_report_changes_only_the_tokens_host(two_hosts):
    mine, other, _ = two_hosts
    Host.objects.filter(pk__in=[mine.pk, other.pk]).update(status="non_operational", capabilities={})
    response = agent_client(mine).post("/api/agent/capabilities/", {"capabilities": CAPABILITIES}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "up"}
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.capabilities, mine.status) == (CAPABILITIES, "up")
    assert (other.capabilities, other.status) == ({}, "non_operational")


def test_an_error_report_marks_the_host_unreachable(two_hosts):
    mine, other, _ = two_hosts
    body = {"error": {"check": "libvirt_connection", "message": "Connection refused"}}
    response = agent_client(mine).post("/api/agent/capabilities/", body, format="json")
    assert (response.status_code, response.json()) == (200, {"status": "non_operational"})
    assert Host.objects.get(pk=other.pk).status == "up"


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"capabilities": {}},
        {"capabilities": {"cpu_count": "many"}},
        {"capabilities": {"no_such": 1}},
        {"capabilities": CAPABILITIES, "error": {"check": "x", "message": "y"}},
        {"error": {"check": "Not A Name!", "message": "y"}},
        {"error": {"check": "libvirt_connection"}},
    ],
)
def test_a_malformed_capabilities_report_is_400_and_changes_nothing(two_hosts, body):
    mine, *_ = two_hosts
    agent = agent_client(mine)
    before = everything()
    response = agent.post("/api/agent/capabilities/", body, format="json")
    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert everything() == before


def test_an_inventory_adds_updates_and_marks_vanished_vms_of_its_own_host(two_hosts):
    mine, *_ = two_hosts
    kept, lost = VMFactory(host=mine, name="kept"), VMFactory(host=mine, name="lost")
    new_uuid = uuid.uuid4()
    body = {"domains": [domain(new_uuid, "new"), domain(kept.uuid, "kept-renamed", "paused")]}
    response = agent_client(mine).post("/api/agent/inventory/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"added": 1, "updated": 1, "moved": 0, "vanished": 1, "refused": 0}
    assert VM.objects.get(uuid=new_uuid).host_id == mine.pk
    kept.refresh_from_db()
    assert (kept.name, kept.status) == ("kept-renamed", "paused")
    assert VM.objects.get(pk=lost.pk).status == "unknown"


def test_an_inventory_cannot_take_over_another_hosts_vm(two_hosts):
    """The attack: announce a domain with another host's VM's UUID to move its record."""
    mine, other, _ = two_hosts
    victim = VMFactory(host=other, name="victim")
    before = everything()[:3]
    body = {"domains": [domain(victim.uuid, "stolen", "up")]}
    response = agent_client(mine).post("/api/agent/inventory/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"added": 0, "updated": 0, "moved": 0, "vanished": 0, "refused": 1}
    assert everything()[:3] == before
    refused = AuditEntry.objects.get(action="takeover_refused")
    assert (refused.object_id, refused.after["reported_by"], refused.after["host"]) == (
        str(victim.pk),
        str(mine.pk),
        str(other.pk),
    )


def test_a_vm_its_own_host_no_longer_reports_may_be_claimed_by_the_host_that_runs_it(two_hosts):
    mine, other, _ = two_hosts
    vm = VMFactory(host=other, name="wanderer")
    other_agent, my_agent = agent_client(other), agent_client(mine)
    assert other_agent.post("/api/agent/inventory/", {"domains": []}, format="json").json()["vanished"] == 1
    # A copy that is not running claims nothing; a running one does.
    shut_off = my_agent.post("/api/agent/inventory/", {"domains": [domain(vm.uuid, state="down")]}, format="json")
    assert shut_off.json()["moved"] == 0 and VM.objects.get(pk=vm.pk).host_id == other.pk
    running = my_agent.post("/api/agent/inventory/", {"domains": [domain(vm.uuid, "wanderer")]}, format="json")
    assert running.json() == {"added": 0, "updated": 0, "moved": 1, "vanished": 0, "refused": 0}
    vm.refresh_from_db()
    assert (vm.host_id, vm.status) == (mine.pk, "up")


def test_a_vm_with_an_active_job_is_left_to_its_job(two_hosts):
    mine, other, _ = two_hosts
    job = JobFactory(vm=VMFactory(host=mine), destination_host=other)
    response = agent_client(mine).post("/api/agent/inventory/", {"domains": []}, format="json")
    assert response.json()["vanished"] == 0
    assert VM.objects.get(pk=job.vm_id).status == "up"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"domains": {}},
        {"domains": [{"uuid": "not-a-uuid", "name": "x", "state": "up", "memory_mib": 1, "vcpus": 1}]},
        {"domains": [{**domain(uuid.UUID(int=1)), "state": "exploded"}]},
        {"domains": [{**domain(uuid.UUID(int=1)), "memory_mib": -1}]},
        {"domains": [{**domain(uuid.UUID(int=1)), "name": ""}]},
        {"domains": [domain(uuid.UUID(int=1)), domain(uuid.UUID(int=1))]},
        {"domains": [domain(uuid.UUID(int=2)), "nope"]},
    ],
)
def test_a_malformed_inventory_is_400_and_changes_nothing(two_hosts, body):
    mine, *_ = two_hosts
    VMFactory(host=mine)
    agent = agent_client(mine)
    before = everything()
    response = agent.post("/api/agent/inventory/", body, format="json")
    assert response.status_code == 400, response.content
    assert everything() == before


# ---------------------------------------------------------------------------------- jobs
def test_a_job_runs_its_course_through_the_agent_api(two_hosts):
    mine, other, _ = two_hosts
    vm = VMFactory(host=mine)
    job = JobFactory(vm=vm, destination_host=other)
    agent = agent_client(mine)
    claim = agent.post(f"/api/agent/jobs/{job.pk}/claim/").json()
    assert claim["claim"] == "started"
    assert claim["job"] == {
        "id": str(job.pk),
        "vm_uuid": str(vm.uuid),
        "source_uri": mine.libvirt_uri,
        "destination_monitor_uri": other.libvirt_uri,
        "plan": job.plan,
    }
    assert agent.post(f"/api/agent/jobs/{job.pk}/claim/").json() == {"claim": "not_queued"}
    progress = agent.post(f"/api/agent/jobs/{job.pk}/progress/", {"progress": 40, "stats": {}}, format="json")
    assert progress.json() == {"cancel_requested": False}
    agent.post(f"/api/agent/jobs/{job.pk}/progress/", {"progress": 20, "stats": {}}, format="json")
    assert MigrationJob.objects.get(pk=job.pk).progress == 40
    got = agent.get(f"/api/agent/jobs/{job.pk}/").json()
    assert (got["state"], got["vm_uuid"], got["cancel_requested"]) == ("running", str(vm.uuid), False)
    finish = agent.post(f"/api/agent/jobs/{job.pk}/finish/", FINISHED, format="json")
    assert finish.json() == {"state": "succeeded"}
    vm.refresh_from_db()
    assert (vm.host_id, vm.status) == (other.pk, "up")
    assert MigrationJob.objects.get(pk=job.pk).stats["downtime_ms"] == 12
    again = agent.post(f"/api/agent/jobs/{job.pk}/finish/", FINISHED | {"source_state": "up"}, format="json")
    assert again.json() == {"state": "succeeded"}, "a job ends once"


def test_the_outcome_is_ferrys_decision_not_the_agents_word(two_hosts):
    mine, other, _ = two_hosts
    job = JobFactory(vm=VMFactory(host=mine), destination_host=other)
    agent = agent_client(mine)
    agent.post(f"/api/agent/jobs/{job.pk}/claim/")
    claims_success = FINISHED | {"source_state": "up", "destination_state": None}
    assert agent.post(f"/api/agent/jobs/{job.pk}/finish/", claims_success, format="json").json() == {"state": "failed"}
    assert VM.objects.get(pk=job.vm_id).host_id == mine.pk


def test_reconcile_ends_the_job_from_the_reported_states(two_hosts):
    mine, other, _ = two_hosts
    job = JobFactory(vm=VMFactory(host=mine), destination_host=other)
    agent = agent_client(mine)
    body = {"source_state": "up", "destination_state": None, "aborted": False}
    response = agent.post(f"/api/agent/jobs/{job.pk}/reconcile/", body, format="json")
    assert response.json() == {"state": "failed"}
    assert MigrationJob.objects.get(pk=job.pk).error["code"] == "reconciled"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "claim/", None),
        ("post", "progress/", {"progress": 50, "stats": {}}),
        ("post", "finish/", FINISHED),
        ("post", "reconcile/", {"source_state": None, "destination_state": "up", "aborted": False}),
    ],
)
def test_another_hosts_job_is_403_and_nothing_changes(two_hosts, method, suffix, body):
    mine, other, third = two_hosts
    queued = JobFactory(vm=VMFactory(host=other), destination_host=mine)  # mine is only its destination
    running = JobFactory(vm=VMFactory(host=other), destination_host=third)
    MigrationJob.objects.filter(pk=running.pk).update(state="running")
    agent = agent_client(mine)
    before = everything()
    for job_id in (queued.pk, running.pk, uuid.uuid4()):  # a job that does not exist: the same answer
        response = getattr(agent, method)(f"/api/agent/jobs/{job_id}/{suffix}", body, format="json")
        assert response.status_code == 403, response.content
        assert "detail" in response.json()
    assert everything() == before


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("progress/", {"progress": 150, "stats": {}}),
        ("progress/", {"progress": "50", "stats": {}}),
        ("progress/", {"progress": 5, "stats": []}),
        ("finish/", {"result": {}, "source_state": "exploded", "destination_state": None}),
        ("finish/", {"result": {"ok": "yes"}, "source_state": None, "destination_state": "up"}),
        ("finish/", {"source_state": None, "destination_state": "up"}),
        ("reconcile/", {"source_state": "up"}),
        ("reconcile/", {"source_state": "up", "destination_state": None, "aborted": "no"}),
    ],
)
def test_a_malformed_job_report_is_400_and_changes_nothing(two_hosts, suffix, body):
    mine, other, _ = two_hosts
    job = JobFactory(vm=VMFactory(host=mine), destination_host=other)
    agent = agent_client(mine)
    agent.post(f"/api/agent/jobs/{job.pk}/claim/")
    before = everything()
    response = agent.post(f"/api/agent/jobs/{job.pk}/{suffix}", body, format="json")
    assert response.status_code == 400, response.content
    assert everything() == before


def test_ferrys_web_and_worker_never_load_the_libvirt_layer():
    """The web process and Ferry's own worker open no libvirt: only an agent does."""
    code = (
        "import sys, django; django.setup(); "
        "from django.urls import resolve; import config.urls, config.celery, migrations_app.tasks; "
        "resolve('/api/agent/host/'); config.celery.app.loader.import_default_modules(); "
        "loaded = sorted(m for m in sys.modules if m in ('libvirt', 'ferry_agent.virt', 'ferry_agent.runner')); "
        "print(loaded)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
