"""What the agent reads about a VM's memtune hard limit and its host's locked-memory rights.

The domain XML is read as untrusted text (a guest's owner may shape parts of its definition);
the QEMU processes are read from /proc. No libvirt here: the lab test (tests/e2e/test_lab_memtune.py)
runs the same code against real daemons and QEMU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry_agent import memlock
from ferry_agent.virt import MAX_HARD_LIMIT_MIB, memtune_hard_limit_mib

UUID = "81907e8d-0275-44a9-9a63-c7d41fd52ffc"


def domain_xml(memtune: str = "") -> str:
    return f"<domain type='kvm'><name>g</name><memory unit='KiB'>524288</memory>{memtune}<vcpu>1</vcpu></domain>"


@pytest.mark.parametrize(
    ("memtune", "mib"),
    [
        ("", None),
        ("<memtune><soft_limit unit='KiB'>1048576</soft_limit></memtune>", None),
        ("<memtune><hard_limit unit='KiB'>8192</hard_limit></memtune>", 8),
        ("<memtune><hard_limit>8192</hard_limit></memtune>", 8),  # KiB by default
        ("<memtune><hard_limit unit='KiB'>1023</hard_limit></memtune>", 0),  # floored
        ("<memtune><hard_limit unit='KiB'>2047</hard_limit></memtune>", 1),
        ("<memtune><hard_limit unit='MiB'>4096</hard_limit></memtune>", 4096),
        ("<memtune><hard_limit unit='G'>2</hard_limit></memtune>", 2048),
        ("<memtune><hard_limit unit='gib'> 3 </hard_limit></memtune>", 3072),
        ("<memtune><hard_limit unit='MB'>1000</hard_limit></memtune>", 953),  # decimal megabytes
        ("<memtune><hard_limit unit='bytes'>1048576</hard_limit></memtune>", 1),
        ("<memtune><hard_limit unit='TiB'>1</hard_limit></memtune>", 1024 * 1024),
        ("<memtune><hard_limit unit='KiB'>9007199254740991</hard_limit></memtune>", None),  # libvirt's unlimited
    ],
)
def test_the_hard_limit_is_read_in_mib(memtune, mib):
    assert memtune_hard_limit_mib(domain_xml(memtune)) == mib


def test_a_limit_outside_memtune_is_not_the_vms():
    assert memtune_hard_limit_mib(domain_xml("<devices><hard_limit>8</hard_limit></devices>")) is None


@pytest.mark.parametrize(
    "xml",
    [
        domain_xml("<memtune><hard_limit unit='KiB'>-8</hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit unit='KiB'>8e9</hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit unit='KiB'>0x10</hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit unit='KiB'></hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit unit='KiB'>\u0668</hard_limit></memtune>"),  # an Arabic-Indic 8
        domain_xml("<memtune><hard_limit unit='parsecs'>8</hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit unit='EiB'>2</hard_limit></memtune>"),  # above 1 EiB
        domain_xml(f"<memtune><hard_limit unit='MiB'>{MAX_HARD_LIMIT_MIB + 1}</hard_limit></memtune>"),
        domain_xml(f"<memtune><hard_limit unit='KiB'>{'9' * 400}</hard_limit></memtune>"),
        domain_xml("<memtune><hard_limit>8</hard_limit><hard_limit>1000000</hard_limit></memtune>"),
        "<domain><memtune><hard_limit>8</hard_limit></memtune>",  # not well formed
        "",
        # entity expansion (billion laughs) and an external entity: refused before the parser
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "1234567890"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<domain><memtune><hard_limit>&b;</hard_limit></memtune></domain>",
        '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>',
        domain_xml("<memtune><hard_limit>8</hard_limit></memtune>") + " " * (4 * 1024 * 1024),
    ],
)
def test_a_hostile_or_malformed_definition_is_refused(xml):
    with pytest.raises(ValueError):
        memtune_hard_limit_mib(xml)


def test_a_comment_in_the_definition_is_not_hostile():
    xml = "<!-- saved by virsh -->" + domain_xml("<memtune><hard_limit>8192</hard_limit></memtune>")
    assert memtune_hard_limit_mib(xml) == 8


# ------------------------------------------------------------------------------ locked memory
def _fake_proc(tmp_path: Path, processes: list[tuple[list[str], str]]) -> str:
    """A /proc tree of made-up processes: a QEMU without CAP_IPC_LOCK cannot be started in this
    sandbox (its QEMU must run as root), so that case is a constructed directory."""
    for pid, (argv, capeff) in enumerate(processes, start=100):
        entry = tmp_path / str(pid)
        entry.mkdir()
        (entry / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")
        (entry / "status").write_text(f"Name:\tx\nUid:\t107\t107\t107\t107\nCapEff:\t{capeff}\n")
    (tmp_path / "self").mkdir()
    return str(tmp_path)


QEMU = ["/usr/bin/qemu-system-x86_64", "-name", "guest=g", "-uuid", UUID, "-S"]
ROOT_CAPS = "000001fffeffffff"  # the lab's QEMU: CAP_IPC_LOCK (bit 14) set
NO_CAPS = "0000000000000000"  # QEMU as an unprivileged user, or with its capabilities cleared


def test_a_qemu_holding_cap_ipc_lock_is_not_held_to_its_limit(tmp_path):
    proc = _fake_proc(tmp_path, [(QEMU, ROOT_CAPS)])
    assert memlock.qemu_memlock_enforced([UUID], proc=proc) is False


def test_a_qemu_without_cap_ipc_lock_is_held_to_its_limit(tmp_path):
    proc = _fake_proc(tmp_path, [(QEMU, NO_CAPS)])
    assert memlock.qemu_memlock_enforced([UUID.upper()], proc=proc) is True


def test_one_held_qemu_among_free_ones_means_enforced(tmp_path):
    other = "11111111-2222-3333-4444-555555555555"
    proc = _fake_proc(tmp_path, [(QEMU, ROOT_CAPS), ([*QEMU[:3], "-uuid", other], NO_CAPS)])
    assert memlock.qemu_memlock_enforced([UUID, other], proc=proc) is True
    assert memlock.qemu_memlock_enforced([UUID], proc=proc) is False  # only this host's domains count


def test_nothing_to_look_at_is_not_known(tmp_path):
    impostor = ["/bin/sleep", "-uuid", UUID]  # not a QEMU, whatever its arguments
    proc = _fake_proc(tmp_path, [(impostor, NO_CAPS)])
    assert memlock.qemu_memlock_enforced([UUID], proc=proc) is None
    assert memlock.qemu_memlock_enforced([], proc=proc) is None
    assert memlock.qemu_memlock_enforced([UUID], proc=str(tmp_path / "missing")) is None


def test_a_libvirt_on_another_machine_is_not_looked_for_here():
    """Its QEMU processes are not in this machine's /proc: the agent says it does not know."""
    from ferry_agent.runner import _memlock_enforced

    assert _memlock_enforced("qemu+tls://kvm01.example/system") is None
