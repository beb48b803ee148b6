"""The real oVirt Python SDK (ovirtsdk4 4.6, requirements-ovirt-sdk.txt) against a live Ferry server.

Each test is what an existing oVirt script does, unchanged: log in, test(), search, update a
cluster's migration options, list hosts and VMs, follow links, migrate by host id or name, find the
job by its correlation id, poll it to the end, cancel, close(). No hypervisor runs here: where a
job must end, the test plays the source host's agent through the agent's own services
(migrations_app.agent_services), exactly the calls a host's worker makes (the lab test in test_lab.py runs
the real one).
"""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest

from clusters.models import VM, Cluster
from core.models import AuditEntry
from migrations_app.agent_services import migration_claim, migration_finish
from migrations_app.models import JobState, MigrationJob
from ovirt_api.models import SsoToken
from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID
from tests.factories import UserFactory
from tests.ovirt_api.conftest import PASSWORD

sdk = pytest.importorskip("ovirtsdk4", reason="the oVirt SDK is installed by `make setup` (requirements-ovirt-sdk.txt)")
types = pytest.importorskip("ovirtsdk4.types")

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def connect(live_server, ovirt_admin, ovirt_estate):
    """Opens SDK connections to the live server, as a script would; closes what the test left open."""
    opened = []

    def open_connection(username: str = "admin@internal", password: str = PASSWORD):
        connection = sdk.Connection(
            url=f"{live_server.url}/ovirt-engine/api", username=username, password=password, timeout=30
        )
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        with contextlib.suppress(sdk.Error):
            connection.close()


def wait_until(condition, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_login_and_test_then_close_revokes_the_token(connect):
    connection = connect()

    assert connection.test(raise_exception=True) is True
    api = connection.system_service().get()
    assert api.product_info.name == "Ferry"
    assert api.product_info.version.major == 4
    token = connection.authenticate()
    assert SsoToken.objects.count() == 1
    assert token not in SsoToken.objects.get().key_hash  # only the hash is stored

    connection.close()

    assert SsoToken.objects.count() == 0
    assert AuditEntry.objects.filter(action="logout", actor="admin").exists()


def test_a_wrong_password_raises_the_sdk_auth_error(connect):
    connection = connect(password="not-the-password")

    with pytest.raises(sdk.AuthError, match="Cannot authenticate user 'admin@internal'"):
        connection.test(raise_exception=True)


def test_list_clusters_with_a_name_search(connect, ovirt_estate):
    clusters = connect().system_service().clusters_service()

    found = clusters.list(search="name=pro*")

    assert [cluster.name for cluster in found] == ["prod"]
    assert found[0].id == str(ovirt_estate.prod.pk)
    assert found[0].version.major == 4 and found[0].version.minor == 7
    assert found[0].migration.policy.id == str(MINIMAL_DOWNTIME_ID)
    assert clusters.list(search="name=nothing-like-this") == []
    assert {cluster.name for cluster in clusters.list()} == {"prod", "old"}


def test_update_a_cluster_to_very_large_vms_with_custom_parallel_connections(connect, ovirt_estate):
    service = connect().system_service().clusters_service().cluster_service(str(ovirt_estate.prod.pk))

    updated = service.update(
        types.Cluster(
            migration=types.MigrationOptions(
                policy=types.MigrationPolicy(id=str(VERY_LARGE_VMS_ID)),
                parallel_migrations_policy=types.ParallelMigrationsPolicy.CUSTOM,
                custom_parallel_migrations=4,
                encrypted=types.InheritableBoolean.FALSE,
                bandwidth=types.MigrationBandwidth(
                    assignment_method=types.MigrationBandwidthAssignmentMethod.CUSTOM, custom_value=25000
                ),
            ),
            error_handling=types.ErrorHandling(on_error=types.MigrateOnError.DO_NOT_MIGRATE),
        )
    )

    assert updated.migration.policy.id == str(VERY_LARGE_VMS_ID)
    assert updated.migration.parallel_migrations_policy == types.ParallelMigrationsPolicy.CUSTOM
    assert updated.migration.custom_parallel_migrations == 4
    assert updated.migration.bandwidth.custom_value == 25000
    assert updated.error_handling.on_error == types.MigrateOnError.DO_NOT_MIGRATE
    stored = Cluster.objects.get(pk=ovirt_estate.prod.pk)
    assert (stored.migration_policy_id, stored.parallel_migrations_policy, stored.custom_parallel_migrations) == (
        VERY_LARGE_VMS_ID,
        "custom",
        4,
    )
    assert (stored.migration_encrypted, stored.migration_bandwidth, stored.migration_bandwidth_custom_mbps) == (
        "false",
        "custom",
        25000,
    )
    entry = AuditEntry.objects.filter(object_type="cluster", object_id=str(stored.pk), action="update").latest("pk")
    assert entry.actor == "admin" and entry.user.username == "admin"
    assert entry.after["migration_policy"] == str(VERY_LARGE_VMS_ID)


def test_a_refused_update_raises_the_sdk_error_with_ferrys_message(connect, ovirt_estate):
    service = connect().system_service().clusters_service().cluster_service(str(ovirt_estate.old.pk))
    audit_before = AuditEntry.objects.filter(object_type="cluster").count()

    with pytest.raises(sdk.Error) as raised:
        service.update(
            types.Cluster(migration=types.MigrationOptions(policy=types.MigrationPolicy(id=str(VERY_LARGE_VMS_ID))))
        )

    message = str(raised.value)
    assert "Very large VMs needs parallel migrations, which compatibility version 4.6 does not support." in message
    assert "HTTP response code is 400" in message
    assert Cluster.objects.get(pk=ovirt_estate.old.pk).migration_policy_id == MINIMAL_DOWNTIME_ID
    assert AuditEntry.objects.filter(object_type="cluster").count() == audit_before


def test_hosts_list_search_and_get(connect, ovirt_estate):
    hosts = connect().system_service().hosts_service()

    assert [host.name for host in hosts.list(search="cluster=prod")] == ["hv-a", "hv-b"]
    host = hosts.host_service(str(ovirt_estate.hv_b.pk)).get()

    assert host.name == "hv-b"
    assert host.status == types.HostStatus.UP
    assert host.cluster.id == str(ovirt_estate.prod.pk)
    assert host.memory == 262144 * 1024 * 1024
    assert host.libvirt_version.major == 9
    assert [h.name for h in hosts.list(search="name=hv-* and status=up", max=2)] == ["hv-a", "hv-b"]


def test_vms_list_get_and_follow_link(connect, ovirt_estate):
    connection = connect()
    vms = connection.system_service().vms_service()

    (vm,) = vms.list(search="name=db-1")
    assert vm.status == types.VmStatus.UP
    assert vm.memory == 2048 * 1024 * 1024
    assert vm.cpu.topology.cores == 2
    host = connection.follow_link(vm.host)
    cluster = connection.follow_link(vm.cluster)

    assert host.name == "hv-a"
    assert cluster.name == "prod"
    assert vms.vm_service(vm.id).get().name == "db-1"


def _job(connection, correlation_id: str):
    jobs = connection.system_service().jobs_service().list(search=f"correlation_id={correlation_id}")
    assert len(jobs) == 1
    return jobs[0]


def test_migrate_by_host_id_then_poll_the_job_and_the_vm_to_the_end(connect, ovirt_estate):
    connection = connect()
    vm_service = connection.system_service().vms_service().vm_service(str(ovirt_estate.vm.pk))
    correlation_id = str(uuid.uuid4())

    vm_service.migrate(host=types.Host(id=str(ovirt_estate.hv_b.pk)), query={"correlation_id": correlation_id})

    job = _job(connection, correlation_id)
    assert job.status == types.JobStatus.STARTED
    assert job.description == "Migrating VM db-1 from Host hv-a to Host hv-b"
    stored = MigrationJob.objects.get(correlation_id=correlation_id)
    assert stored.state == JobState.QUEUED and stored.created_by.username == "admin"
    assert stored.plan["policy"]["id"] == str(MINIMAL_DOWNTIME_ID)
    assert AuditEntry.objects.filter(action="migrate", object_id=str(stored.pk), actor="admin").exists()
    assert vm_service.get().status == types.VmStatus.MIGRATING

    # The source host's agent claims and finishes the job (no hypervisor in this test).
    migration_claim(job_id=str(stored.pk))
    assert connection.follow_link(job).status == types.JobStatus.STARTED
    migration_finish(job_id=str(stored.pk), state=JobState.SUCCEEDED, error=None, stats={})

    done = wait_until(lambda: [j for j in [_job(connection, correlation_id)] if j.status != types.JobStatus.STARTED])
    assert done[0].status == types.JobStatus.FINISHED
    assert done[0].end_time is not None
    vm = vm_service.get()
    assert vm.status == types.VmStatus.UP
    assert vm.host.id == str(ovirt_estate.hv_b.pk)


def test_migrate_by_host_name_then_cancel(connect, ovirt_estate):
    connection = connect()
    vm_service = connection.system_service().vms_service().vm_service(str(ovirt_estate.vm.pk))
    correlation_id = "cancel-me-1"

    vm_service.migrate(host=types.Host(name="hv-b"), query={"correlation_id": correlation_id})
    job = _job(connection, correlation_id)
    assert MigrationJob.objects.get(pk=job.id).destination_host_id == ovirt_estate.hv_b.pk

    vm_service.cancel_migration()

    assert _job(connection, correlation_id).status == types.JobStatus.ABORTED
    assert MigrationJob.objects.get(pk=job.id).state == JobState.CANCELLED
    assert vm_service.get().status == types.VmStatus.UP
    assert vm_service.get().host.id == str(ovirt_estate.hv_a.pk)
    assert AuditEntry.objects.filter(action="cancel", object_id=job.id, actor="admin").exists()


def test_a_second_migration_of_the_same_vm_is_a_409_with_ferrys_message(connect, ovirt_estate):
    vm_service = connect().system_service().vms_service().vm_service(str(ovirt_estate.vm.pk))
    vm_service.migrate(host=types.Host(name="hv-b"))

    with pytest.raises(sdk.Error) as raised:
        vm_service.migrate(host=types.Host(name="hv-b"))

    assert "db-1 already has an active migration" in str(raised.value)
    assert "HTTP response code is 409" in str(raised.value)
    assert MigrationJob.objects.filter(vm=ovirt_estate.vm).count() == 1


def test_migrate_vms_in_affinity_closure_is_refused_not_ignored(connect, ovirt_estate):
    vm_service = connect().system_service().vms_service().vm_service(str(ovirt_estate.vm.pk))

    with pytest.raises(sdk.Error, match="Ferry has no affinity groups"):
        vm_service.migrate(host=types.Host(name="hv-b"), migrate_vms_in_affinity_closure=True)

    assert not MigrationJob.objects.exists()


def test_migrate_to_another_cluster_is_refused(connect, ovirt_estate):
    vm_service = connect().system_service().vms_service().vm_service(str(ovirt_estate.vm.pk))

    with pytest.raises(sdk.Error, match="only within its own cluster"):
        vm_service.migrate(cluster=types.Cluster(id=str(ovirt_estate.old.pk)))
    with pytest.raises(sdk.Error, match="The destination host is in another cluster"):
        vm_service.migrate(host=types.Host(name="hv-old"))

    assert not MigrationJob.objects.exists()


def test_an_operator_migrates_but_cannot_change_a_cluster(connect, ovirt_estate):
    from django.contrib.auth.models import Group

    from core.roles import OPERATOR_GROUP, roles_ensure

    roles_ensure()
    operator = UserFactory(username="oper")
    operator.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    system = connect("oper@internal").system_service()

    with pytest.raises(sdk.AuthError, match=r"lacks the permission clusters\.change_cluster"):
        system.clusters_service().cluster_service(str(ovirt_estate.prod.pk)).update(types.Cluster(description="x"))
    system.vms_service().vm_service(str(ovirt_estate.vm.pk)).migrate(host=types.Host(name="hv-b"))

    assert MigrationJob.objects.get().created_by == operator
    with pytest.raises(sdk.AuthError):
        system.options_service().option_service("MigrationPolicies").get(version="4.7")


def test_the_migration_policies_option_for_admins(connect):
    option = connect().system_service().options_service().option_service("MigrationPolicies").get(version="4.7")

    (value,) = option.values
    assert value.version == "4.7"
    assert str(VERY_LARGE_VMS_ID) in value.value
    at_46 = connect().system_service().options_service().option_service("MigrationPolicies").get(version="4.6")
    assert str(VERY_LARGE_VMS_ID) not in at_46.values[0].value


def test_an_expired_token_makes_the_sdk_log_in_again(connect):
    connection = connect()
    connection.test(raise_exception=True)
    first = SsoToken.objects.get()
    SsoToken.objects.filter(pk=first.pk).update(expires_at=first.created_at)

    assert connection.system_service().clusters_service().list()  # 401, a new login, the retry

    assert SsoToken.objects.exclude(pk=first.pk).count() == 1


def test_a_vm_that_moved_is_found_on_its_new_host(connect, ovirt_estate):
    VM.objects.filter(pk=ovirt_estate.vm.pk).update(host=ovirt_estate.hv_b)
    vms = connect().system_service().vms_service()

    assert [vm.name for vm in vms.list(search="host=hv-b")] == ["db-1"]
    assert vms.list(search="host=hv-a") == []


def test_the_readme_script_runs_as_written(live_server, ovirt_admin, ovirt_estate, capsys):
    """The script in README.md's "For oVirt users", pointed at this server; a thread plays the source
    host's agent so that the script's polling loop ends."""
    import re
    import threading
    from pathlib import Path

    from django.db import connection as db_connection

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    script = re.search(r"## For oVirt users.*?```python\n(.*?)```", readme, re.S).group(1)
    script = script.replace("https://ferry.example/ovirt-engine/api", f"{live_server.url}/ovirt-engine/api")
    script = script.replace('password="..."', f'password="{PASSWORD}"').replace(', ca_file="ca.pem"', "")

    def agent():
        try:
            job = wait_until(lambda: MigrationJob.objects.first())
            migration_claim(job_id=str(job.pk))
            migration_finish(job_id=str(job.pk), state=JobState.SUCCEEDED, error=None, stats={})
        finally:
            db_connection.close()

    thread = threading.Thread(target=agent)
    thread.start()
    exec(compile(script, "README.md", "exec"), {})  # noqa: S102  (the project's own README)
    thread.join(timeout=30)

    assert capsys.readouterr().out.strip() == "hv-b"
    cluster = Cluster.objects.get(pk=ovirt_estate.prod.pk)
    assert (cluster.migration_policy_id, cluster.custom_parallel_migrations) == (VERY_LARGE_VMS_ID, 4)
