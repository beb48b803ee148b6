"""A small estate for the page tests: one cluster with two hosts, a VM, a custom policy, jobs."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.utils import timezone

from clusters.models import VM, Cluster, Host
from core.roles import READ_ONLY_GROUP, roles_ensure
from migrations_app.models import JobState, MigrationJob
from migrations_app.selectors import migration_plan
from policies.models import MigrationPolicy
from tests.factories import ClusterFactory, HostFactory, PolicyFactory, UserFactory, VMFactory


@dataclass
class World:
    cluster: Cluster
    source: Host
    destination: Host
    vm: VM
    policy: MigrationPolicy
    failed_job: MigrationJob


def make_job(vm: VM, destination: Host, *, state: str = JobState.QUEUED, **fields) -> MigrationJob:
    plan = migration_plan(vm=vm, destination=destination).to_dict()
    if state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        fields.setdefault("finished_at", timezone.now())
    if state == JobState.SUCCEEDED:
        fields.setdefault("progress", 100)
    return MigrationJob.objects.create(
        vm=vm, source_host=vm.host, destination_host=destination, plan=plan, state=state, **fields
    )


def build_world() -> World:
    cluster = ClusterFactory(name="prod", description="Production hypervisors")
    source = HostFactory(name="kvm-a", cluster=cluster)
    destination = HostFactory(name="kvm-b", cluster=cluster)
    vm = VMFactory(name="db-1", host=source, memory_mib=65536, vcpus=16)
    policy = PolicyFactory(name="Fast lane")
    failed = make_job(
        vm,
        destination,
        state=JobState.FAILED,
        progress=37,
        error={"code": "migration_failed", "message": "the destination refused the connection"},
    )
    return World(cluster, source, destination, vm, policy, failed)


def read_only_user(username: str = "reader"):
    roles_ensure()
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=READ_ONLY_GROUP))
    return user
