"""One migration's lines, on the web, the worker and the host side, all carry its job's id; web
lines carry their request's id, and so do the audit entries the request wrote."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import Client

from core.models import AuditEntry
from ferry_common import logs
from migrations_app.models import TERMINAL_STATES, MigrationJob
from tests.factories import HostFactory, UserFactory, VMFactory
from tests.worker_fixtures import Worker, worker_env


class Lines(logging.Handler):
    """The JSON lines this process logs, as Ferry's handler formats them."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.ContextFilter())
        self.setFormatter(logs.JsonFormatter(service="web"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def web_lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler.lines
    root.setLevel(level)
    root.removeHandler(handler)


def test_a_web_request_has_an_id_on_its_lines_in_its_response_and_on_its_audit_entries(db, web_lines):
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))

    response = client.post("/api/clusters/", {"name": "prod"}, content_type="application/json")

    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    assert AuditEntry.objects.get(object_type="cluster").request_id == request_id
    line = next(line for line in web_lines if line["logger"] == "ferry.request")
    assert line["request_id"] == request_id
    assert line["message"].startswith("POST /api/clusters/ 201")


def test_a_sane_incoming_request_id_is_kept_and_a_forged_one_replaced(db):
    assert Client().get("/health/", HTTP_X_REQUEST_ID="lb-7f3a.42")["X-Request-ID"] == "lb-7f3a.42"
    forged = Client().get("/health/", HTTP_X_REQUEST_ID='x" level=ERROR injected')["X-Request-ID"]
    assert " " not in forged
    assert len(forged) == 32


def test_the_request_id_of_an_error_response_is_on_djangos_own_line(db, web_lines):
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.9")

    line = next(line for line in web_lines if line["logger"] == "django.request")
    assert line["request_id"] == response["X-Request-ID"]


# The worker reads the jobs the test commits; serialized_rollback: a later test that restores the
# database from its serialized contents finds it empty, not re-seeded.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_jobs_id_is_on_its_web_worker_and_host_side_lines(settings, web_lines):
    settings.FERRY_HOST_QUEUES = True
    # A source whose libvirt refuses at once: the job runs its whole course on the worker, quickly.
    source = HostFactory(name="src", libvirt_uri="qemu+tcp://127.0.0.1:1/system")
    destination = HostFactory(name="dst", cluster=source.cluster)
    vm = VMFactory(host=source)
    worker = Worker("job-logs", [f"host.{source.pk}"], env=worker_env(FERRY_LOG_FORMAT="json")).wait_ready()
    try:
        client = Client()
        client.force_login(UserFactory(is_superuser=True, is_staff=True))
        response = client.post(
            f"/api/vms/{vm.pk}/migrate/", {"destination_host": str(destination.pk)}, content_type="application/json"
        )
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while MigrationJob.objects.get(pk=job_id).state not in TERMINAL_STATES:
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        worker.stop()

    web = [line for line in web_lines if line.get("job_id") == job_id]
    assert any("queued" in line["message"] for line in web)
    assert all(line["request_id"] == response["X-Request-ID"] for line in web)
    worker_lines = []
    for text in worker.log.read_text().splitlines():
        try:
            worker_lines.append(json.loads(text))
        except ValueError:
            continue  # Celery's start-up banner
    of_job = [line for line in worker_lines if line.get("job_id") == job_id]
    loggers = {line["logger"] for line in of_job}
    assert "celery.worker.strategy" in loggers, "the task's arrival carries the job id"
    assert "celery.app.trace" in loggers, "the task's own lines (its result) carry the job id"
    assert loggers & {"migrations_app.agent_services", "ferry_agent.runner", "ferry_agent.virt"}, loggers
    # The task ran for the request that asked for it: its request id travelled with the message.
    assert {line.get("request_id") for line in of_job if line["logger"] != "celery.worker.strategy"} == {
        response["X-Request-ID"]
    }
    # And no other line of the worker's task claims another job.
    assert {line["job_id"] for line in worker_lines if "job_id" in line} == {job_id}
