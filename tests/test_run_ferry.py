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


class Run:
    """One `manage.py run_ferry` (what `make run` starts) in its own var/ directory and port."""

    def __init__(self, var: Path):
        self.var, self.port = var, free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "PYTEST_VERSION")}
        env |= {"FERRY_VAR_DIR": str(var), "FERRY_BIND": f"127.0.0.1:{self.port}", "FERRY_ADMIN_PASSWORD": "s3cret-run"}
        env.pop("FERRY_HOST_QUEUES", None)
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_ferry"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_up(self) -> None:
        deadline = time.monotonic() + 90
        while status(self.url("/health/")) != 200:
            assert self.process.poll() is None, self.process.stdout.read()
            assert time.monotonic() < deadline, "Ferry did not come up within 90 s"
            time.sleep(0.5)

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
        return output


@pytest.mark.slow
def test_two_runs_on_one_machine_keep_their_own_control_socket_settings_file_and_metrics(tmp_path):
    first, second = Run(tmp_path / "a"), Run(tmp_path / "b")
    try:
        first.wait_up()
        second.wait_up()
        for run in (first, second):
            assert (run.var / "gunicorn.ctl").is_socket()
            assert (run.var / "ferry.env").read_text().splitlines()[-1] == "FERRY_HOST_QUEUES=false"
        # A command run beside `make run` in the same checkout routes tasks as `make run` does.
        code = "from django.conf import settings; print(settings.FERRY_HOST_QUEUES)"
        shell = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=REPO, env=first.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert shell.stdout.strip().splitlines()[-1] == "False"
        # /metrics answers for every gunicorn worker (multiprocess mode) and has Ferry's families.
        with urllib.request.urlopen(first.url("/metrics"), timeout=10) as response:  # noqa: S310 - our own local server
            text = response.read().decode()
        assert "django_http_requests_total_by_method_total" in text
        assert "ferry_hosts{" in text

        output = first.stop()
        assert "Ferry stopped." in output
        assert not (first.var / "gunicorn.ctl").exists()
        assert (second.var / "gunicorn.ctl").is_socket(), "stopping one run removed the other's control socket"
        assert status(second.url("/health/")) == 200
    finally:
        first.stop()
        second.stop()
