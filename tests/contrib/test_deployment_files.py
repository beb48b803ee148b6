"""contrib/: the systemd units pass `systemd-analyze verify` without a warning and keep their
hardening; the gunicorn configuration loads; the nginx site passes `nginx -t`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "contrib" / "systemd").glob("*.service"))
NGINX = [shutil.which("nginx"), "/var/cache/ferry-test/nginx/usr/sbin/nginx"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("LOUD SKIP: systemd-analyze is missing, and `make test` could not install it (package systemd)")
    return path


def installed_here(unit: Path, destination: Path) -> Path:
    """The unit as it would be installed from this checkout: /opt/ferry is this checkout, so its
    commands exist and verify checks them for real."""
    text = unit.read_text().replace("/opt/ferry", str(REPO))
    target = destination / unit.name
    target.write_text(text)
    return target


def service_section(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    # systemd allows a key more than once (configparser would keep only the last): read the lines.
    section = None
    for line in unit.read_text().replace("\\\n", " ").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_there_are_units_for_the_web_server_the_worker_and_the_agent():
    assert [unit.name for unit in UNITS] == ["ferry-agent.service", "ferry-web.service", "ferry-worker.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_analyze_verifies_each_unit_without_a_warning(unit, tmp_path):
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", "--generators=no", str(installed_here(unit, tmp_path))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", "systemd-analyze warns (it exits 0 on unknown keys and bad values)"


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_each_unit_is_hardened(unit, tmp_path):
    service = service_section(unit)
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{unit.name}: {key}={value}"
    assert service["User"][0].startswith("ferry"), "a dedicated user, never root"
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--man=no", str(installed_here(unit, tmp_path))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert exposure, result.stdout + result.stderr
    assert float(exposure[1]) <= 2.0, result.stdout


def test_the_agent_reaches_libvirts_socket_and_nothing_of_ferrys_server():
    service = service_section(REPO / "contrib/systemd/ferry-agent.service")
    assert service["SupplementaryGroups"] == ["libvirt"]
    assert service["EnvironmentFile"] == ["/etc/ferry/agent.env"]
    assert "StateDirectory" not in service, "the agent keeps no state on the hypervisor"
    assert service["ExecStart"] == ["/opt/ferry/.venv/bin/ferry agent --host ${FERRY_AGENT_HOST}"]


def test_the_gunicorn_configuration_loads_and_gives_each_ferry_its_own_control_socket(tmp_path):
    code = (
        "import runpy, sys; c = runpy.run_path(sys.argv[1]); "
        "print(c['control_socket'], c['wsgi_app'], c['bind'], c['control_socket_disable'])"
    )
    env = {"PATH": "/usr/bin:/bin", "FERRY_VAR_DIR": str(tmp_path), "FERRY_BIND": "127.0.0.1:8123"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "contrib/gunicorn.conf.py")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.split() == [
        str(tmp_path / "gunicorn.ctl"),
        "config.wsgi:application",
        "['127.0.0.1:8123']",
        "False",
    ]


def test_nginx_accepts_the_example_site(tmp_path):
    nginx = next((path for path in NGINX if path and Path(path).is_file()), None)
    if nginx is None:
        pytest.skip("LOUD SKIP: no nginx binary (`make test` unpacks Debian's as root)")
    if shutil.which("openssl") is None:
        pytest.skip("LOUD SKIP: openssl is missing: no certificate for the test")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ferry.example",
         "-keyout", tmp_path / "privkey.pem", "-out", tmp_path / "fullchain.pem"],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (REPO / "contrib/nginx/ferry.conf").read_text().replace("/etc/ssl/ferry", str(tmp_path))
    (tmp_path / "ferry.conf").write_text(site)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in kinds)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n{temp}access_log off;\ninclude {tmp_path}/ferry.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
