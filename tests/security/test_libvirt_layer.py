"""The second check (issue 11): a forbidden URI written straight into the database, past the model's
validation, is refused right before libvirt would open it, and nothing runs.

The attack is real: `qemu+ext:///system?command=<program>` makes libvirt start <program> as the
worker's user (root on a hypervisor). The first test shows that with libvirt itself; the others
show that Ferry's worker paths never let such a URI reach libvirt. Every test watches a marker
file the program would create.
"""

from pathlib import Path

import pytest

from clusters.models import Host, HostStatus, VMStatus
from config.embedded_agent import local_agent
from ferry_agent import runner, virt
from migrations_app.models import JobState, MigrationJob
from tests.factories import HostFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(tmp_path) -> tuple[Path, Path]:
    """A program that only touches a marker file, and that marker."""
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    return script, marker


@pytest.fixture(autouse=True)
def lab_allowances(settings, tmp_path):
    """Even with everything a lab allows turned on, a program is never started."""
    settings.FERRY_LIBVIRT_ALLOW_TCP = True
    settings.FERRY_LIBVIRT_SOCKET_DIRS = [str(tmp_path)]


def test_the_attack_is_real_libvirt_itself_runs_the_program(program):
    libvirt = pytest.importorskip("libvirt")
    script, marker = program
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(f"qemu+ext:///system?command={script}")
    assert marker.exists(), "libvirt did not start the program: this test proves nothing here"


@pytest.mark.parametrize(
    "uri",
    ["qemu+ext:///system?command={script}", "qemu+ssh://localhost/system?command={script}", "qemu+ext:///session"],
)
def test_the_libvirt_layer_itself_never_opens_a_program(program, uri):
    """ferry_agent.virt's own floor, under every caller's allow-list: no program, whatever policy."""
    script, marker = program
    with pytest.raises(virt.VirtError, match="refused before libvirt"):
        virt.host_capabilities(uri.format(script=script), timeout=20)
    with pytest.raises(virt.VirtError, match="refused before libvirt"):
        virt.migrate(
            source_uri="qemu:///system",
            domain_uuid="00000000-0000-4000-8000-000000000001",
            destination_uri=uri.format(script=script),
            flags=["VIR_MIGRATE_LIVE"],
            params={},
            schedule={},
            timeout=5,
            on_progress=lambda report: None,
            should_cancel=lambda: False,
        )
    assert not marker.exists()


def test_the_libvirt_layer_refuses_a_migrate_uri_that_is_not_tcp():
    with pytest.raises(virt.VirtError, match="refused before libvirt"):
        virt.migrate(
            source_uri="qemu:///system",
            domain_uuid="00000000-0000-4000-8000-000000000001",
            destination_uri="qemu+tls://hv.example/system",
            flags=["VIR_MIGRATE_LIVE"],
            params={"migrate_uri": "exec:touch /tmp/x"},
            schedule={},
            timeout=5,
            on_progress=lambda report: None,
            should_cancel=lambda: False,
        )


def test_a_refresh_refuses_a_stored_program_uri_and_says_why(program):
    script, marker = program
    uri = f"qemu+ext:///system?command={script}"
    host = HostFactory(status=HostStatus.UP)
    Host.objects.filter(pk=host.pk).update(libvirt_uri=uri)

    runner.refresh_capabilities(local_agent(str(host.pk)))

    assert not marker.exists()
    host.refresh_from_db()
    assert host.status == HostStatus.NON_OPERATIONAL
    assert host.status_reason["check"] == "libvirt_uri"
    assert uri in host.status_reason["message"] and "Allowed:" in host.status_reason["message"]
    assert host.status_reason["at"]


def test_an_inventory_sync_refuses_a_stored_program_uri(program):
    script, marker = program
    host = HostFactory()
    Host.objects.filter(pk=host.pk).update(libvirt_uri=f"qemu+ssh://hv/system?command={script}")
    answer = runner.sync_inventory(local_agent(str(host.pk)))
    assert "refused" in answer["error"] and set(answer) == {"error"}  # nothing reported, nothing changed
    assert not marker.exists()


def run_job(job) -> MigrationJob:
    runner.migrate(local_agent(str(job.source_host_id)), str(job.pk))
    return MigrationJob.objects.get(pk=job.pk)


def test_a_migration_refuses_a_program_as_the_destination_uri(program):
    """The peer_uri attack: the source's libvirtd would start the program when migrating."""
    script, marker = program
    job = JobFactory()
    plan = job.plan
    plan["libvirt"]["destination_uri"] = f"qemu+ext://127.0.0.3/system?command={script}"
    MigrationJob.objects.filter(pk=job.pk).update(plan=plan)

    job = run_job(job)

    assert not marker.exists()
    assert job.state == JobState.FAILED and job.error["code"] == "uri_refused"
    assert f"qemu+ext://127.0.0.3/system?command={script}" in job.error["message"]
    job.vm.refresh_from_db()
    assert job.vm.status == VMStatus.UP and job.vm.host_id == job.source_host_id


def test_a_migration_refuses_a_stored_program_as_its_source_uri(program):
    script, marker = program
    job = JobFactory()
    uri = f"qemu+ext:///system?command={script}"
    Host.objects.filter(pk=job.source_host_id).update(libvirt_uri=uri)

    job = run_job(job)

    assert not marker.exists()
    assert job.state == JobState.FAILED and job.error["code"] == "uri_refused"
    source = Host.objects.get(pk=job.source_host_id)
    assert source.status == HostStatus.NON_OPERATIONAL and uri in source.status_reason["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"migrate_uri": "tcp://10.0.0.2?x=1"},
        {"migrate_uri": "unix:///tmp/guest-ram"},
        {"migrate_uri": "exec:/bin/sh -c 'touch /tmp/x'"},
        {"migrate_uri": "tcp://user@10.0.0.2"},
        {"tls.destination": "evil;host"},
        {"dname": "renamed"},
    ],
)
def test_a_migration_refuses_params_no_plan_of_ferrys_has(params):
    job = JobFactory()
    plan = job.plan
    plan["libvirt"]["params"] = params
    MigrationJob.objects.filter(pk=job.pk).update(plan=plan)

    job = run_job(job)

    assert job.state == JobState.FAILED and job.error["code"] == "uri_refused", job.error


def test_the_reconciler_checks_the_uris_it_opens(program, monkeypatch):
    script, marker = program
    job = JobFactory(state=JobState.RUNNING)
    Host.objects.filter(pk=job.source_host_id).update(libvirt_uri=f"qemu+ext:///system?command={script}")
    Host.objects.filter(pk=job.destination_host_id).update(
        libvirt_uri=f"qemu+ext:///system?command={script}", peer_uri=f"qemu+ext:///system?command={script}"
    )
    runner.reconcile(local_agent(str(job.source_host_id)), str(job.pk))
    assert not marker.exists()
    assert MigrationJob.objects.get(pk=job.pk).state == JobState.FAILED
