"""Ferry as a package: the lock files agree with pyproject.toml, and a hypervisor's install
(`pip install .[agent]` in an empty virtual environment) gives a working agent and no test tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCKS = {
    "server": "requirements.txt",
    "agent": "requirements-agent.txt",
    "dev": "requirements-dev.txt",
    "ovirt-sdk": "requirements-ovirt-sdk.txt",
    "bench": "requirements-bench.txt",
}
TEST_TOOLS = {"pytest", "pytest-django", "pytest-playwright", "playwright", "schemathesis", "hypothesis", "ruff"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pin(requirement: str) -> tuple[str, str]:
    """'psycopg[binary]==3.3.9' -> ('psycopg', '3.3.9')."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", requirement.strip())
    assert match, f"{requirement!r} is not pinned exactly"
    return canonical(match[1]), match[2]


def lock_pins(name: str) -> dict[str, str]:
    """The packages of a lock file, each with its version; every one must carry hashes."""
    text = (REPO / name).read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split("\n", 1)[0]
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", first)
        if not match:
            continue
        assert "--hash=sha256:" in block, f"{name}: {match[1]} has no hash"
        pins[canonical(match[1])] = match[2]
    return pins


def group_requirements(group: str) -> list[str]:
    out = []
    for item in PYPROJECT["dependency-groups"][group]:
        out.extend(group_requirements(item["include-group"]) if isinstance(item, dict) else [item])
    return out


def asked_for(lock: str) -> list[str]:
    """What pyproject.toml asks each lock file to pin."""
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    return {
        "server": project["dependencies"] + extras["server"],
        "agent": project["dependencies"] + extras["agent"],
        "dev": group_requirements("dev"),
        "ovirt-sdk": group_requirements("ovirt-sdk"),
        "bench": extras["bench"],
    }[lock]


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_file_pins_what_pyproject_asks_for_with_hashes(lock):
    pins = lock_pins(LOCKS[lock])
    for requirement in asked_for(lock):
        name, version = pin(requirement)
        assert pins.get(name) == version, f"{LOCKS[lock]}: {name}=={pins.get(name)}, pyproject.toml: {version}"


def test_the_locks_agree_on_every_package_they_share():
    seen: dict[str, tuple[str, str]] = {}
    for lock in LOCKS.values():
        for name, version in lock_pins(lock).items():
            if name in seen:
                assert seen[name][1] == version, f"{name}: {seen[name][0]} pins {seen[name][1]}, {lock} pins {version}"
            seen[name] = (lock, version)


def test_neither_the_server_nor_the_agent_lock_holds_a_test_tool():
    for lock in (LOCKS["server"], LOCKS["agent"]):
        assert not TEST_TOOLS & set(lock_pins(lock)), f"{lock} installs test tools"
    assert "django" not in lock_pins(LOCKS["agent"]), "a hypervisor needs no Django"


def _copy_source(destination: Path) -> Path:
    """The checkout's files without its .venv, var/ or caches: building in place would leave
    build/ and *.egg-info in the checkout."""
    ignore = shutil.ignore_patterns(".git", ".venv", "var", "__pycache__", "*.egg-info", "build", ".*_cache", "tests")
    shutil.copytree(REPO, destination, ignore=ignore, symlinks=True)
    return destination


@pytest.mark.slow
def test_pip_install_agent_extra_in_an_empty_venv_gives_a_working_agent_and_no_test_tool(tmp_path):
    if shutil.which("pkg-config") is None or subprocess.run(["pkg-config", "--exists", "libvirt"]).returncode:
        pytest.skip("LOUD SKIP: libvirt's headers (libvirt-dev) are missing, libvirt-python cannot be built here")
    source = _copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTHON", "VIRTUAL_ENV"))}
    install = subprocess.run(
        [venv / "bin/pip", "install", "-q", f"{source}[agent]"], env=env, capture_output=True, text=True, timeout=540
    )
    assert install.returncode == 0, install.stderr[-3000:]

    freeze = subprocess.run([venv / "bin/pip", "list", "--format=freeze"], capture_output=True, text=True, check=True)
    installed = {canonical(line.split("==")[0]) for line in freeze.stdout.split()}
    assert {"ferry", "celery", "libvirt-python"} <= installed
    assert not TEST_TOOLS & installed, f"test tools on a hypervisor: {TEST_TOOLS & installed}"
    assert "django" not in installed

    work = tmp_path / "elsewhere"  # not the checkout: the installed package must stand alone
    work.mkdir()
    version = subprocess.run(
        [venv / "bin/ferry", "agent", "--version"], cwd=work, env=env, capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"ferry-agent \S+\n", version.stdout)
    imports = subprocess.run(
        [venv / "bin/python", "-c", "import libvirt, ferry_agent.celery_app, ferry_agent.runner, ferry_agent.virt"],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert imports.returncode == 0, imports.stderr
    # Started for real: it checks its environment, then reaches for Ferry, which is not there.
    agent_env = env | {
        "FERRY_URL": "http://127.0.0.1:9",  # the discard port: nothing answers
        "FERRY_AGENT_TOKEN": "not-a-real-token",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
    }
    start = subprocess.run(
        [venv / "bin/ferry", "agent", "--host", "hv01", "--check"],
        cwd=work, env=agent_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert start.returncode == 1, start.stderr
    assert "ferry-agent: refusing to start" in start.stderr
    assert "127.0.0.1:9" in start.stderr
    server = subprocess.run([venv / "bin/ferry", "run"], cwd=work, env=env, capture_output=True, text=True)
    assert server.returncode != 0
    assert "server extra" in server.stderr


@pytest.mark.slow
def test_make_run_from_a_fresh_clone_sets_up_without_test_tools_and_serves(tmp_path):
    """What a new user does: clone, `make run`. The set-up installs the server from the lock and
    no test tool; Ferry then answers /health/. (FERRY_SKIP_APT: this test never installs system
    packages; `make run` installs none anyway.)"""
    import signal
    import socket
    import time
    import urllib.request

    clone = tmp_path / "ferry"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST", "VIRTUAL_ENV"))}
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "FERRY_HOST_QUEUES")}
    env |= {"FERRY_SKIP_APT": "1", "FERRY_PYTHON": sys.executable, "FERRY_BIND": f"127.0.0.1:{port}"}
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 540
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
                time.sleep(1)
        installed = subprocess.run(
            [clone / ".venv/bin/pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
        ).stdout
        names = {canonical(line.split("==")[0]) for line in installed.split()}
        assert {"django", "gunicorn", "celery", "django-prometheus"} <= names
        assert not TEST_TOOLS & names, f"make run installed test tools: {TEST_TOOLS & names}"
        assert (clone / ".venv/bin/ferry").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
