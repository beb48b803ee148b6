"""The real two-host libvirt lab as pytest fixtures, shared by tests/virt/ and tests/e2e/.

`lab` (session scope) brings the lab up with lab/lab.sh when it is not up already, returns the
parsed var/lab/state.json (a dict, class Lab) with helper methods, and takes the lab down at the
end only if it started it.  LAB_ID=<id> selects the independent lab in var/lab-<id>/ instead.
Where the lab cannot run (not root, not Linux, no namespaces, no libvirt-python), every test
using it is skipped with a loud reason.  FERRY_SKIP_LAB=1 skips them on purpose.  `fresh_guest`
is a factory for guests that are removed again after the test.  No database, no Django.

Use: `from tests.lab_fixtures import fresh_guest, lab  # noqa: F401` in a conftest.py.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAB_SH = REPO / "lab" / "lab.sh"
# LAB_ID selects an independent second lab (lab/lab.sh: netns ferrylab-<id>, state in var/lab-<id>/).
LAB_ID = os.environ.get("LAB_ID", "")
STATE = REPO / "var" / (f"lab-{LAB_ID}" if LAB_ID else "lab") / "state.json"

if str(REPO) not in sys.path:  # `import ferry_agent.virt` without any pytest configuration
    sys.path.insert(0, str(REPO))


class Lab(dict):
    """The parsed var/lab/state.json plus helpers that drive lab/lab.sh."""

    started_here = False

    def reload(self) -> Lab:
        self.clear()
        self.update(json.loads(STATE.read_text()))
        return self

    def host(self, name: str) -> dict:
        return self["hosts"][name]

    def uri(self, name: str) -> str:
        return self["hosts"][name]["libvirt_uri"]

    def other(self, name: str) -> str:
        return "hostb" if name == "hosta" else "hosta"

    def where(self, uuid: str) -> str | None:
        """The host a domain is active on now (state.json's "host" is where it was started)."""
        from ferry_agent import virt

        for name in self["hosts"]:
            if virt.domain_state(self.uri(name), uuid, timeout=10) in ("up", "paused", "migrating"):
                return name
        return None

    def guest(
        self,
        name: str | None = None,
        *,
        host: str = "hosta",
        mem: int | None = None,
        fill: int | None = None,
        dirty: int | None = None,
        vcpus: int | None = None,
        replace: bool = True,
    ) -> dict:
        """Start a guest with lab/lab.sh guest (fresh unless replace=False); its state.json entry."""
        name = name or f"t-{uuidlib.uuid4().hex[:8]}"
        args = ["guest", "--host", host, "--name", name]
        for opt, value in (("--mem", mem), ("--fill", fill), ("--dirty", dirty), ("--vcpus", vcpus)):
            if value is not None:
                args += [opt, str(value)]
        if replace:
            args.append("--replace")
        out = run_lab(*args, timeout=240).stdout.strip().splitlines()
        self.reload()
        entry = dict(self["guests"][name])
        assert out and out[-1] == entry["uuid"], out
        return entry

    def rm_guest(self, name: str) -> None:
        run_lab("rm-guest", name, timeout=120)
        self.reload()

    def kill_host(self, name: str, *, qemu: bool = False, guest: str | None = None) -> None:
        """kill -9 the host's libvirtd; qemu=True also kills all its QEMU processes (every guest
        on it dies), guest=NAME only that guest's QEMU."""
        extra = ["--qemu"] if qemu else ["--guest", guest] if guest else []
        run_lab("kill-host", name, *extra, timeout=60)

    def start_host(self, name: str) -> None:
        run_lab("start-host", name, timeout=120)
        self.reload()


def run_lab(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(LAB_SH), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lab/lab.sh {' '.join(args)} failed (rc {proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def _cannot_run_lab() -> str | None:
    if os.environ.get("FERRY_SKIP_LAB") == "1":
        return "FERRY_SKIP_LAB=1"
    if platform.system() != "Linux":
        return f"the lab needs Linux, this is {platform.system()}"
    if os.geteuid() != 0:
        return "the lab needs root (network/mount namespaces, libvirtd); run the tests as root"
    for tool in ("ip", "unshare", "flock", "apt-get"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--uts", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip() or probe.returncode}"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed in this venv (requirements-agent.txt)"
    return None


@pytest.fixture(scope="session")
def lab() -> Lab:
    reason = _cannot_run_lab()
    if reason:
        msg = f"!!! REAL LIBVIRT LAB TESTS SKIPPED: {reason} !!!"
        warnings.warn(msg, stacklevel=1)
        print(f"\n{msg}", file=sys.stderr)
        pytest.skip(msg)
    state = Lab()
    already = run_lab("status", check=False).returncode == 0 and STATE.exists()
    if not already:
        t = time.monotonic()
        run_lab("up")
        state.started_here = True
        print(f"\n[lab] lab/lab.sh up took {time.monotonic() - t:.1f} s", file=sys.stderr)
    state.reload()
    yield state
    if state.started_here:
        run_lab("down", timeout=120)


@pytest.fixture
def fresh_guest(lab: Lab):
    """Factory for guests that are removed again at the end of the test."""
    names: list[str] = []

    def make(**kwargs) -> dict:
        entry = lab.guest(**kwargs)
        names.append(entry["name"])
        return entry

    yield make
    for name in names:
        lab.rm_guest(name)
