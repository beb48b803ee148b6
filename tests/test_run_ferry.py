"""`make run`'s command on embedded defaults: it serves the login page and admin, and Ctrl-C stops it cleanly."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@pytest.mark.slow
def test_run_serves_login_and_admin_on_sqlite_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env |= {"FERRY_VAR_DIR": str(tmp_path), "FERRY_BIND": f"127.0.0.1:{port}", "FERRY_ADMIN_PASSWORD": "s3cret-run"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_ferry"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while status(f"http://127.0.0.1:{port}/accounts/login/") != 200:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the login page did not come up within 90 s"
            time.sleep(0.5)
        assert status(f"http://127.0.0.1:{port}/admin/login/") == 200
        assert (tmp_path / "ferry.sqlite3").exists()
        assert (tmp_path / "broker").is_dir()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    assert "Admin account created: admin, password from FERRY_ADMIN_PASSWORD." in output
    assert "Ferry stopped." in output
    assert status(f"http://127.0.0.1:{port}/accounts/login/") is None
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout == "", "the worker or web server outlived Ctrl-C"
