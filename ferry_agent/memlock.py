"""Whether this host's QEMU processes are held to their locked-memory limit.

Zero-copy live migration pins the guest's pages while the kernel sends them; the kernel charges
them to the QEMU process's RLIMIT_MEMLOCK unless the process holds CAP_IPC_LOCK. libvirt raises
that limit for the migration to the VM's <memtune><hard_limit> when the VM declares one, so a hard
limit below the guest's RAM makes zero-copy fail, but only where the limit is enforced.

What decides it is the running QEMU's effective capability set: the user QEMU runs as
(qemu.conf `user`) and whether libvirt clears its capabilities (qemu.conf
`clear_emulator_capabilities`) both end up there, so it is read from the processes themselves
rather than guessed from a configuration file. The current RLIMIT_MEMLOCK is not evidence: libvirt
sets it from the hard limit for the migration. libvirt's API does not expose the QEMU process, so
the processes are found in /proc by the `-uuid` argument libvirt gives each one; that works only
for a libvirt on this machine, which is why the caller asks only for a local connection URI.

No libvirt and no Django here: plain files in, a bool or None out.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["CAP_IPC_LOCK", "qemu_memlock_enforced"]

CAP_IPC_LOCK = 14  # linux/capability.h
MAX_CMDLINE = 256 * 1024


def _qemu_uuid(cmdline: bytes) -> str | None:
    """The domain UUID a QEMU command line carries (`-uuid <uuid>`), or None for another program."""
    args = cmdline.split(b"\0")
    if not args or not os.path.basename(args[0]).startswith(b"qemu"):
        return None
    for flag, value in itertools.pairwise(args):
        if flag == b"-uuid":
            return value.decode("ascii", "replace").lower()
    return None


def _holds_ipc_lock(status: str) -> bool | None:
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            try:
                return bool(int(line.split(":", 1)[1].strip(), 16) >> CAP_IPC_LOCK & 1)
            except ValueError:
                return None
    return None


def qemu_memlock_enforced(domain_uuids: Iterable[str], *, proc: str = "/proc") -> bool | None:
    """False when every running QEMU process of these domains holds CAP_IPC_LOCK (nothing holds
    their locked memory to a limit); True when one of them does not; None when none of them could
    be read (no running domain, another machine's libvirt, or /proc not readable)."""
    wanted = {str(uuid).lower() for uuid in domain_uuids}
    if not wanted:
        return None
    seen: list[bool] = []
    try:
        entries = [entry for entry in Path(proc).iterdir() if entry.name.isdigit()]
    except OSError as error:
        log.info("cannot list %s: %s", proc, error)
        return None
    for entry in entries:
        try:
            with (entry / "cmdline").open("rb") as handle:
                uuid = _qemu_uuid(handle.read(MAX_CMDLINE))
            if uuid not in wanted:
                continue
            holds = _holds_ipc_lock((entry / "status").read_text(errors="replace"))
        except OSError:  # the process ended while we looked, or is not ours to read
            continue
        if holds is not None:
            seen.append(holds)
    if not seen:
        return None
    return not all(seen)
