"""`make run`'s command on embedded defaults: it serves the login page and admin, its one worker runs
a host's task from the single default queue, and Ctrl-C stops it cleanly."""

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
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


class Browser:
    """A logged-in session on the running Ferry, as a user's browser would hold it (cookies, CSRF)."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{base}/accounts/login/", timeout=10).read()
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf()}
        ).encode()
        self.opener.open(f"{base}/accounts/login/", form, timeout=10).read()
        assert any(cookie.name == "sessionid" for cookie in self.jar), "the login did not work"

    def csrf(self) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == "csrftoken")

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(  # noqa: S310 - our own local server
            f"{self.base}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf(), "Referer": self.base},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def a_hosts_task_runs_on_the_single_queue(base: str) -> None:
    """A refresh asked for in the API reaches the one worker, which serves only the default queue:
    the host's status changes from the task's report (libvirt at qemu:///system or not)."""
    user = Browser(base, "admin", "s3cret-run")
    status_code, cluster = user.api("POST", "/api/clusters/", {"name": "single-machine"})
    assert status_code == 201, cluster
    host_data = {"name": "here", "cluster": cluster["id"], "address": "127.0.0.1", "libvirt_uri": "qemu:///system"}
    status_code, host = user.api("POST", "/api/hosts/", host_data)
    assert status_code == 201, host
    assert host["capabilities_updated_at"] is None
    status_code, _ = user.api("POST", f"/api/hosts/{host['id']}/refresh/")
    assert status_code == 202
    deadline = time.monotonic() + 60
    while True:
        _, now = user.api("GET", f"/api/hosts/{host['id']}/")
        if now["status"] != host["status"] or now["capabilities_updated_at"]:
            break
        assert time.monotonic() < deadline, f"the refresh never ran: {now}"
        time.sleep(0.5)
    _, log = user.api("GET", "/api/audit-log/")
    assert any(e["object_id"] == host["id"] and e["actor"] != "admin" for e in log["results"]), log


@pytest.mark.slow
def test_run_serves_ferry_on_sqlite_runs_host_tasks_from_one_queue_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "FERRY_HOST_QUEUES")
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
        a_hosts_task_runs_on_the_single_queue(f"http://127.0.0.1:{port}")
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
