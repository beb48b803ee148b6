"""Migration plans, starting and cancelling migrations through the API."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from clusters.models import Cluster, HostStatus, VMStatus
from core.models import AuditEntry
from migrations_app.models import JobState, MigrationJob
from migrations_app.selectors import migration_plan, vm_for_planning
from policies.models import VERY_LARGE_VMS_ID
from tests.broker import Sent, take
from tests.factories import ClusterFactory, HostFactory, JobFactory, PolicyFactory, VMFactory

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]

PLAN_KEYS = {
    "policy",
    "zerocopy",
    "parallel_connections",
    "encrypted",
    "compressed",
    "auto_converge",
    "post_copy",
    "max_bandwidth_mib_s",
    "incoming_limit",
    "outgoing_limit",
    "convergence_schedule",
    "libvirt",
    "decisions",
}


def plan_url(vm) -> str:
    return f"/api/vms/{vm.pk}/migration-plan/"


def test_the_plan_has_the_contracts_shape_and_is_the_resolvers(api, estate, level):
    estate.cluster.migration_policy_id = VERY_LARGE_VMS_ID
    estate.cluster.save()

    response = api.get(plan_url(estate.vm), {"destination_host": str(estate.destination.pk)})

    assert response.status_code == 200
    plan = response.json()
    assert set(plan) == PLAN_KEYS
    assert set(plan["policy"]) == {"id", "name"} and plan["policy"]["id"] == str(VERY_LARGE_VMS_ID)
    assert set(plan["convergence_schedule"]) == {"init", "stalling"}
    assert plan["convergence_schedule"]["init"] == [{"name": "setDowntime", "params": ["300"]}]
    assert plan["convergence_schedule"]["stalling"][-1] == {"limit": -1, "action": {"name": "abort", "params": []}}
    assert set(plan["libvirt"]) == {"destination_uri", "flags", "params"}
    assert {"VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"} <= set(plan["libvirt"]["flags"])
    assert plan["libvirt"]["params"]["migrate_uri"] == f"tcp://{estate.destination.address}"
    assert all(set(decision) == {"code", "message"} for decision in plan["decisions"])
    assert "parallel_enforced" in {decision["code"] for decision in plan["decisions"]}
    assert plan == migration_plan(vm=vm_for_planning(estate.vm.pk), destination=estate.destination).to_dict()


@pytest.mark.parametrize("destination", [None, "", "00000000-0000-4000-8000-000000000000", "hv-b"])
def test_the_plan_needs_a_known_destination(api, estate, destination):
    query = {} if destination is None else {"destination_host": destination}
    response = api.get(plan_url(estate.vm), query)
    assert response.status_code == 400
    assert isinstance(response.json()["destination_host"], list)


def test_the_plan_refuses_the_source_and_hosts_of_other_clusters(api, estate):
    elsewhere = HostFactory(cluster=ClusterFactory())
    for host in (estate.source, elsewhere):
        response = api.get(plan_url(estate.vm), {"destination_host": str(host.pk)})
        assert response.status_code == 400
        assert "destination_host" in response.json()


def test_migrate_freezes_the_plan_on_a_queued_job_and_enqueues_after_commit(
    api, estate, django_capture_on_commit_callbacks, settings
):
    settings.FERRY_HOST_QUEUES = True
    queue = f"host.{estate.source.pk}"
    plan = api.get(plan_url(estate.vm), {"destination_host": str(estate.destination.pk)}).json()

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            f"/api/vms/{estate.vm.pk}/migrate/", {"destination_host": str(estate.destination.pk)}, format="json"
        )
        assert response.status_code == 202
        assert take(queue, wait_s=0.5) == [], "the task must not be sent before the job is committed"

    job = response.json()
    assert (job["state"], job["progress"], job["created_by"]) == ("queued", 0, "admin")
    assert (job["vm"], job["source_host"], job["destination_host"]) == (
        str(estate.vm.pk),
        str(estate.source.pk),
        str(estate.destination.pk),
    )
    assert job["plan"] == plan
    assert MigrationJob.objects.get(pk=job["id"]).plan == plan
    for callback in callbacks:
        callback()
    # The outbox sends every job of these hosts that can start: the estate's own waiting one too.
    ours = [sent for sent in take(queue) if sent.args[1] == job["id"]]
    assert ours == [Sent(task="ferry.migrate", args=[str(estate.source.pk), job["id"]], kwargs={})]
    assert MigrationJob.objects.get(pk=job["id"]).dispatched_at is not None
    entry = AuditEntry.objects.get(action="migrate")
    assert (entry.object_type, entry.object_id, entry.actor) == ("migrationjob", job["id"], "admin")


def test_a_vm_with_an_active_job_gets_409(api, estate, django_capture_on_commit_callbacks):
    JobFactory(vm=estate.vm, destination_host=estate.destination, state=JobState.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/vms/{estate.vm.pk}/migrate/", {"destination_host": str(estate.destination.pk)}, format="json"
        )
    assert response.status_code == 409
    assert "active migration" in response.json()["detail"]
    assert MigrationJob.objects.filter(vm=estate.vm).count() == 1
    assert take(f"host.{estate.source.pk}", wait_s=0.5) == []


def test_one_active_job_per_vm_is_a_database_constraint(estate):
    JobFactory(vm=estate.vm, destination_host=estate.destination)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobFactory(vm=estate.vm, destination_host=estate.destination)


def test_a_vm_can_migrate_again_once_its_job_has_ended(api, estate, django_capture_on_commit_callbacks):
    from django.utils import timezone

    JobFactory(vm=estate.vm, state=JobState.FAILED, finished_at=timezone.now(), destination_host=estate.destination)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/vms/{estate.vm.pk}/migrate/", {"destination_host": str(estate.destination.pk)}, format="json"
        )
    assert response.status_code == 202
    ours = [sent for sent in take(f"host.{estate.source.pk}") if sent.args[1] == response.json()["id"]]
    assert ours == [Sent(task="ferry.migrate", args=[str(estate.source.pk), response.json()["id"]], kwargs={})]


@pytest.mark.parametrize("case", ["source", "other_cluster", "maintenance", "vm_down", "unknown"])
def test_migrate_refuses_impossible_moves(api, estate, django_capture_on_commit_callbacks, case):
    vm, destination = estate.vm, estate.destination
    if case == "source":
        destination = estate.source
    elif case == "other_cluster":
        destination = HostFactory(cluster=ClusterFactory())
    elif case == "maintenance":
        destination.status = HostStatus.MAINTENANCE
        destination.save()
    elif case == "vm_down":
        vm.status = VMStatus.DOWN
        vm.save()
    target = "00000000-0000-4000-8000-000000000000" if case == "unknown" else str(destination.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/vms/{vm.pk}/migrate/", {"destination_host": target}, format="json")

    assert response.status_code == 400
    field = "vm" if case == "vm_down" else "destination_host"
    assert isinstance(response.json()[field], list)
    assert not MigrationJob.objects.filter(vm=vm).exists()
    assert take(f"host.{estate.source.pk}", wait_s=0.5) == []


def test_a_vms_policy_must_be_offered_at_its_clusters_level(api, level):
    vm = VMFactory(host=HostFactory(cluster=ClusterFactory(compatibility_version=level("4.6"))))
    response = api.patch(f"/api/vms/{vm.pk}/", {"migration_policy": str(VERY_LARGE_VMS_ID)}, format="json")
    assert response.status_code == 400
    assert "migration_policy" in response.json()


def test_a_vm_being_migrated_cannot_be_deleted(api, estate):
    response = api.delete(f"/api/vms/{estate.job.vm_id}/")
    assert response.status_code == 400
    assert "being migrated" in " ".join(response.json()["non_field_errors"])


def test_jobs_are_listed_newest_first_and_filtered(api, estate):
    newer = JobFactory(vm=estate.vm, destination_host=estate.destination, state=JobState.RUNNING)
    listed = api.get("/api/migrations/").json()["results"]
    assert [job["id"] for job in listed] == [str(newer.pk), str(estate.job.pk)]
    assert [job["id"] for job in api.get("/api/migrations/", {"state": "running"}).json()["results"]] == [str(newer.pk)]
    assert [job["id"] for job in api.get("/api/migrations/", {"vm": str(estate.vm.pk)}).json()["results"]] == [
        str(newer.pk)
    ]
    assert set(listed[0]) == {
        "id",
        "vm",
        "source_host",
        "destination_host",
        "correlation_id",
        "state",
        "progress",
        "plan",
        "error",
        "stats",
        "cancel_requested",
        "automatic",
        "rerun_of",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "waiting",
    }


def test_jobs_are_found_by_correlation_id(api, estate):
    tagged = JobFactory(vm=estate.vm, destination_host=estate.destination, correlation_id="deploy-42")

    listed = api.get("/api/migrations/", {"correlation_id": "deploy-42"}).json()["results"]

    assert [(job["id"], job["correlation_id"]) for job in listed] == [(str(tagged.pk), "deploy-42")]
    assert api.get("/api/migrations/", {"correlation_id": "other"}).json()["results"] == []


@pytest.mark.parametrize("query", [{"state": "paused"}, {"vm": "00000000-0000-4000-8000-000000000000"}])
def test_unknown_job_filters_are_a_400(api, estate, query):
    response = api.get("/api/migrations/", query)
    assert response.status_code == 400
    assert set(response.json()) == set(query)


def test_cancelling_a_queued_job_ends_it(api, estate):
    response = api.post(f"/api/migrations/{estate.job.pk}/cancel/")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["cancel_requested"]) == ("cancelled", True)
    assert body["finished_at"] is not None
    entry = AuditEntry.objects.get(action="cancel")
    assert (entry.before["state"], entry.after["state"]) == ("queued", "cancelled")


def test_cancelling_a_running_job_asks_its_task_to_stop(api, estate):
    job = JobFactory(vm=estate.vm, destination_host=estate.destination, state=JobState.RUNNING)
    body = api.post(f"/api/migrations/{job.pk}/cancel/").json()
    assert (body["state"], body["cancel_requested"]) == ("running", True)


def test_cancelling_an_ended_job_is_a_409(api, estate):
    api.post(f"/api/migrations/{estate.job.pk}/cancel/")
    response = api.post(f"/api/migrations/{estate.job.pk}/cancel/")
    assert response.status_code == 409
    assert "already ended" in response.json()["detail"]


@pytest.mark.parametrize(
    ("setting", "plan_key", "flag"),
    [
        ("FERRY_DEFAULT_ENCRYPTED", "encrypted", "VIR_MIGRATE_TLS"),
        ("FERRY_DEFAULT_COMPRESSED", "compressed", "VIR_MIGRATE_COMPRESSED"),
        ("FERRY_DEFAULT_AUTO_CONVERGE", "auto_converge", "VIR_MIGRATE_AUTO_CONVERGE"),
    ],
)
def test_the_global_defaults_decide_what_inherit_means_in_the_plan(api, estate, settings, setting, plan_key, flag):
    # Everything left at "inherit": the policy, the cluster and the VM.
    policy = PolicyFactory(auto_convergence="inherit", migration_compression="inherit")
    Cluster.objects.filter(pk=estate.cluster.pk).update(migration_policy=policy)
    for value in (False, True):
        setattr(settings, setting, value)
        response = api.get(plan_url(estate.vm), {"destination_host": str(estate.destination.pk)})
        plan = response.json()
        assert (plan[plan_key], flag in plan["libvirt"]["flags"]) == (value, value), (setting, value)


def test_the_global_defaults_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.FERRY_DEFAULT_AUTO_CONVERGE, s.FERRY_DEFAULT_COMPRESSED, s.FERRY_DEFAULT_ENCRYPTED)"
    )
    names = ("FERRY_DEFAULT_AUTO_CONVERGE", "FERRY_DEFAULT_COMPRESSED", "FERRY_DEFAULT_ENCRYPTED")
    base = {k: v for k, v in os.environ.items() if k not in names} | {"DJANGO_SETTINGS_MODULE": "config.settings"}
    for env, expected in (({}, "False False False"), (dict.fromkeys(names, "true"), "True True True")):
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=base | env, capture_output=True, text=True, check=True
        )
        assert result.stdout.split("\n")[-2] == expected, result.stdout


@pytest.mark.parametrize(
    ("libvirt_uri", "peer_uri", "reached_at"),
    [
        ("qemu:///system", "", "qemu+tls://10.9.8.7/system"),  # blank, local socket: the address over TLS
        ("qemu+tls://hv-c.example/system", "", "qemu+tls://hv-c.example/system"),  # blank: the remote URI
        (
            "qemu:///system",
            "qemu+tls://hv-c.migration.example:16515/system",
            "qemu+tls://hv-c.migration.example:16515/system",
        ),
    ],
)
def test_the_destination_is_reached_at_its_peer_uri_or_what_a_blank_one_means(
    api, estate, libvirt_uri, peer_uri, reached_at
):
    destination = HostFactory(
        name="hv-c", cluster=estate.cluster, address="10.9.8.7", libvirt_uri=libvirt_uri, peer_uri=peer_uri
    )
    response = api.get(plan_url(estate.vm), {"destination_host": str(destination.pk)})
    assert response.status_code == 200, response.content
    assert response.json()["libvirt"]["destination_uri"] == reached_at


def test_migrate_without_a_destination_records_ferrys_choice_and_why(api, estate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = api.post(f"/api/vms/{estate.vm.pk}/migrate/", {}, format="json")
    assert response.status_code == 202
    job = response.json()
    assert job["automatic"] is True and job["rerun_of"] is None
    assert job["destination_host"] == str(estate.destination.pk)
    chosen = job["plan"]["decisions"][0]
    assert chosen["code"] == "destination_chosen"
    assert (
        chosen["message"].startswith("Ferry chose hv-b with ")
        and "Passed over: hv-spare is maintenance." in chosen["message"]
    )


def test_migrate_to_a_named_host_is_not_ferrys_choice(api, estate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = api.post(
            f"/api/vms/{estate.vm.pk}/migrate/", {"destination_host": str(estate.destination.pk)}, format="json"
        )
    assert response.json()["automatic"] is False
    assert "destination_chosen" not in [d["code"] for d in response.json()["plan"]["decisions"]]
