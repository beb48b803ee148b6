"""On RabbitMQ, a host's agent gets a broker user that can use its own queue and no other.

Against the real RabbitMQ (FERRY_TEST_RABBITMQ_URL, which CI's PostgreSQL/Redis pass sets, else
the local default amqp://guest:guest@127.0.0.1:5672//), with users made by the real rabbitmqctl:
the agent's real Celery worker (ferry_agent.celery_app, with the flags ferry-agent starts it
with) runs under the user and takes a task off its queue, and the same user is refused
(ACCESS_REFUSED) when it tries to declare, consume from or publish to another host's queue.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from amqp.exceptions import AccessRefused
from django.core.management import call_command
from kombu import Connection, Exchange, Queue

from ferry_agent.celery_app import make_app
from migrations_app.tasks import send_host_task
from tests.factories import HostFactory

REPO = Path(__file__).resolve().parents[2]
RABBITMQCTL = shutil.which("rabbitmqctl")

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(RABBITMQCTL is None, reason="rabbitmqctl is not installed: no RabbitMQ to make users in"),
]


def admin_url() -> str:
    return os.environ.get("FERRY_TEST_RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//"


def agent_url(user: str, password: str) -> str:
    parts = urlsplit(admin_url())
    return f"amqp://{user}:{password}@{parts.hostname}:{parts.port or 5672}/"


def queue_state(name: str) -> str:
    """What the broker holds for a queue, for a failure's message: were the task lost or unread."""
    try:
        with Connection(admin_url(), connect_timeout=5) as admin:
            _name, messages, consumers = admin.channel().queue_declare(name, passive=True)
        alarms = subprocess.run([RABBITMQCTL, "list_queues", "name", "messages", "consumers"],
                                capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        return f"queue {name}: {messages} message(s), {consumers} consumer(s)\n{alarms[-1500:]}"
    except Exception as error:  # only a diagnostic
        return f"queue {name}: cannot be read ({error})"


def host_queue(name: str) -> Queue:
    return Queue(name, Exchange(name, "direct"), routing_key=name)


@pytest.fixture
def agent_user():
    """A broker user for a new host's agent, made by `agent_broker_user --apply`; removed after."""
    try:
        with Connection(admin_url(), connect_timeout=5) as admin:
            admin.ensure_connection(max_retries=1)
    except Exception as error:
        pytest.fail(f"RabbitMQ does not answer at {admin_url()} although rabbitmqctl is installed: {error}")
    mine, other = HostFactory(name="hv-rabbit-mine"), HostFactory(name="hv-rabbit-other")
    out = io.StringIO()
    call_command("agent_broker_user", mine.name, "--apply", stdout=out)
    user, password = f"ferry-agent-{mine.pk}", out.getvalue().splitlines()[-1]
    assert f"amqp://{user}:{password}@" in out.getvalue()
    yield mine, other, user, password
    subprocess.run([RABBITMQCTL, "delete_user", user], capture_output=True, timeout=60, check=False)
    with Connection(admin_url()) as admin:
        channel = admin.channel()
        for host in (mine, other):
            host_queue(f"host.{host.pk}")(channel).delete()
            Exchange(f"host.{host.pk}", "direct")(channel).delete()


def test_the_printed_commands_limit_the_user_to_the_hosts_queue(db):
    host = HostFactory(name="hv-print")
    out = io.StringIO()
    call_command("agent_broker_user", str(host.pk), stdout=out)
    pattern = f"'^host\\.{str(host.pk).replace('-', '\\-')}$'"
    assert f"rabbitmqctl set_permissions -p / ferry-agent-{host.pk} {pattern} {pattern} {pattern}" in out.getvalue()


def test_the_agents_worker_runs_under_its_user_and_takes_its_own_queues_task(agent_user, tmp_path, settings):
    mine, _other, user, password = agent_user
    log = tmp_path / "worker.log"
    code = (
        "import sys; from ferry_common import logs; from ferry_agent import tasks; "
        "from ferry_agent.celery_app import make_app; "
        "logs.configure(level='INFO', service='agent'); "
        "from ferry_agent.cli import worker_argv; "
        f"app = make_app(sys.argv[1], queue='host.{mine.pk}'); tasks.register(app, lambda host_id: None); "
        f"app.worker_main(argv=worker_argv('{mine.pk}', concurrency=1))"
    )
    env = {"PATH": os.environ["PATH"], "FERRY_LOG_LEVEL": "INFO"}
    with log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-c", code, agent_url(user, password)],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        # Sent as Ferry sends it, with Ferry's own broker credential (the agent publishes nothing:
        # a busy claim goes back to Ferry's outbox), to the host's own exchange.
        settings.FERRY_HOST_QUEUES = True
        sender = make_app(admin_url(), queue="unused")
        # Celery's broker_url yields to CELERY_BROKER_URL in the environment (Redis in CI's second
        # pass), which would publish this to another broker than the worker's: write to RabbitMQ.
        sender.conf.broker_write_url = admin_url()
        try:
            send_host_task("ferry.sync_inventory", mine.pk, app=sender)
        finally:
            sender.close()
        deadline = time.monotonic() + 60  # its own minute: a loaded machine may have spent the first starting up
        while "ferry.sync_inventory" not in log.read_text() or "succeeded" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, (
                f"{queue_state(f'host.{mine.pk}')}\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.2)
        assert "ACCESS_REFUSED" not in log.read_text(), log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGQUIT)  # cold shutdown
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=15)


def forged(channel):
    return channel.prepare_message(b"forged", content_type="text/plain", content_encoding="utf-8")


def test_the_agents_user_cannot_use_another_hosts_queue(agent_user):
    mine, other, user, password = agent_user
    theirs = f"host.{other.pk}"
    with Connection(admin_url()) as admin:  # the other host's queue exists, with a task on it
        admin.Producer().publish({"task": "x"}, exchange=host_queue(theirs).exchange, routing_key=theirs,
                                 declare=[host_queue(theirs)])  # fmt: skip
    attempts = {
        "declare": lambda channel: host_queue(theirs)(channel).declare(),
        "consume": lambda channel: channel.basic_get(theirs),
        "publish": lambda channel: channel.basic_publish(forged(channel), exchange=theirs, routing_key=theirs),
        "publish by the default exchange": lambda channel: channel.basic_publish(
            forged(channel), exchange="", routing_key=theirs
        ),
        "bind to its own queue": lambda channel: channel.queue_bind(f"host.{mine.pk}", theirs, theirs),
    }
    for what, attempt in attempts.items():
        with Connection(agent_url(user, password)) as connection:
            channel = connection.channel()
            with pytest.raises(AccessRefused):
                attempt(channel)
                connection.drain_events(timeout=1)  # a refused publish is reported asynchronously
            print(f"{what}: ACCESS_REFUSED")
    with Connection(admin_url()) as admin:
        message = admin.channel().basic_get(theirs)
        assert message is not None and message.body, "the other host's task is still there"


def test_a_password_never_reads_as_an_option(db):
    """rabbitmqctl takes an argument that begins with "-" for an option: no password may."""
    host = HostFactory(name="hv-dash")
    for _ in range(200):
        out = io.StringIO()
        call_command("agent_broker_user", str(host.pk), stdout=out)
        password = out.getvalue().splitlines()[-1]
        assert password and password[0] != "-" and password.isalnum(), password
