"""Zero-copy and the memtune hard limit, on the real lab.

The lab's guest declares a tiny <memtune><hard_limit> (the sandbox's `ulimit -l`, lab/lab.sh) while
its QEMU runs as root with CAP_IPC_LOCK, where nothing enforces the limit. The host's agent finds
both for real (the domain XML through libvirt, the QEMU process's capabilities in /proc): zero-copy
is kept, says why, and QEMU really runs with zero-copy-send. When the host's agent reports locked
memory as enforced (through the agent API, with its own token, as an agent on a host whose QEMU
runs unprivileged would: this sandbox cannot run QEMU without root), the same VM migrates without
zero-copy, with a decision that names the VM, its limit and what to change.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clusters.models import VM, Host
from config.embedded_agent import local_agent
from ferry_agent import runner
from tests.api.test_agent_api import agent_client
from tests.e2e.test_lab_migrations import ZEROCOPY_ON, api, migrate_and_check  # noqa: F401  (api: a fixture)
from tests.worker_fixtures import vm_of

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def declared_limit_kib(lab, guest) -> int:
    """The guest's hard limit as libvirt holds it, read here without Ferry's parser."""
    import libvirt

    conn = libvirt.open(lab.uri(lab.where(guest["uuid"])))
    try:
        xml = conn.lookupByUUIDString(guest["uuid"]).XMLDesc(0)
    finally:
        conn.close()
    limit = ET.fromstring(xml).find("./memtune/hard_limit")  # noqa: S314 - the lab's own daemon
    if limit is None:
        pytest.skip("this machine's `ulimit -l` is unlimited: the lab's guest declares no hard limit")
    assert limit.get("unit", "KiB") == "KiB"
    return int(limit.text or "")


def qemu_holds_ipc_lock(guest_uuid: str) -> bool:
    """Read from the guest's QEMU process itself (found by its -uuid argument)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if b"-uuid" not in args or args[args.index(b"-uuid") + 1].decode() != guest_uuid:
                continue
            capeff = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("CapEff:"))
        except (OSError, IndexError):
            continue
        return bool(int(capeff.split()[1], 16) & (1 << 14))
    raise AssertionError(f"no QEMU process runs the guest {guest_uuid}")


def refresh(host: Host) -> Host:
    """The host's agent reports its capabilities and its domains (the agent's code, in-process)."""
    agent = local_agent(str(host.pk))
    runner.refresh_capabilities(agent)
    runner.sync_inventory(agent)
    return Host.objects.get(pk=host.pk)


def test_the_agent_finds_the_tiny_limit_and_that_qemu_is_not_held_to_it(lab, lab_cluster):
    guest = lab["guest"]
    vm = vm_of(guest)
    source = refresh(vm.host)
    vm.refresh_from_db()
    assert vm.memtune_hard_limit_mib == declared_limit_kib(lab, guest) // 1024
    assert vm.memtune_hard_limit_mib < vm.memory_mib  # tiny: a few MiB for a 512 MiB guest
    assert qemu_holds_ipc_lock(guest["uuid"]) is True  # QEMU runs as root with CAP_IPC_LOCK
    assert source.capabilities["memlock_enforced"] is False


def test_where_locked_memory_is_not_enforced_zerocopy_is_kept_and_qemu_uses_it(api, lab, lab_cluster):  # noqa: F811
    guest = lab["guest"]
    vm = vm_of(guest)
    assert refresh(vm.host).capabilities["memlock_enforced"] is False
    job, monitor = migrate_and_check(api, lab, guest, name="memtune_not_enforced")
    assert job.plan["zerocopy"] is True and "VIR_MIGRATE_ZEROCOPY" in job.plan["libvirt"]["flags"]
    decisions = {d["code"]: d["message"] for d in job.plan["decisions"]}
    assert "zerocopy_memtune_limit" not in decisions
    assert decisions["memtune_limit_not_enforced"].startswith(
        f"The VM {vm.name} declares a memory hard limit (memtune) of {VM.objects.get(pk=vm.pk).memtune_hard_limit_mib}"
        f" MiB, below the {vm.memory_mib + 1024} MiB zero-copy locks, but the source host {vm.host.name} does not "
        "hold QEMU to its locked-memory limit"
    )
    assert ZEROCOPY_ON in monitor, "the source QEMU never had zero-copy-send on"


def test_where_the_agent_reports_locked_memory_enforced_the_vm_migrates_without_zerocopy(api, lab, lab_cluster):  # noqa: F811
    guest = lab["guest"]
    vm = vm_of(guest)
    source = refresh(vm.host)
    limit = VM.objects.get(pk=vm.pk).memtune_hard_limit_mib
    # The report an agent sends from a host whose QEMU is held to its limit, with that agent's token.
    report = {"capabilities": dict(source.capabilities, memlock_enforced=True)}
    response = agent_client(source).post("/api/agent/capabilities/", report, format="json")
    assert response.status_code == 200, response.content
    destination = source.cluster.hosts.exclude(pk=source.pk).get()
    preview = api.get(f"/api/vms/{vm.pk}/migration-plan/", {"destination_host": str(destination.pk)}).json()
    assert preview["zerocopy"] is False

    job, monitor = migrate_and_check(api, lab, guest, name="memtune_enforced")
    assert job.plan["zerocopy"] is False
    assert "VIR_MIGRATE_ZEROCOPY" not in job.plan["libvirt"]["flags"]
    assert "VIR_MIGRATE_PARALLEL" in job.plan["libvirt"]["flags"]  # the parallel connections stay
    decisions = {d["code"]: d["message"] for d in job.plan["decisions"]}
    needed = vm.memory_mib + 1024
    assert decisions["zerocopy_memtune_limit"] == (
        f"The VM {vm.name} declares a memory hard limit (memtune) of {limit} MiB, below the {needed} MiB zero-copy "
        f"must lock (its {vm.memory_mib} MiB of memory plus 1024 MiB for QEMU), so this migration will copy memory "
        f"normally: remove <hard_limit> from the VM's <memtune>, or raise it to at least {needed} MiB."
    )
    assert ZEROCOPY_ON not in monitor
    assert '"capability":"multifd","state":true' in monitor  # still a parallel migration in QEMU

    # The agent's own next report says what it really sees: the guest's QEMU now runs on the
    # destination, as root, so locked memory is not enforced there.
    assert refresh(destination).capabilities["memlock_enforced"] is False
