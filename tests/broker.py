"""The suite's real broker, read back: what Ferry published, taken off a queue.

Ferry publishes through Celery as it always does (CELERY_BROKER_URL: kombu's filesystem broker by
default, Redis or RabbitMQ in CI); a test then takes the messages off the queue with kombu, as a
worker would, and sees the task's name and arguments.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kombu import Connection, pools

from config.celery import app

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


@dataclass(frozen=True)
class Sent:
    task: str
    args: list
    kwargs: dict


def take(queue: str, *, wait_s: float = 2.0) -> list[Sent]:
    """Every message on `queue`, taken off it, in no set order (waits up to wait_s for the first)."""
    sent: list[Sent] = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(app.amqp.queues[queue])
        try:
            while True:
                try:
                    message = simple.get(block=True, timeout=0.2 if sent else wait_s)
                except simple.Empty:
                    return sent
                args, kwargs, _embed = message.decode()
                sent.append(Sent(task=message.headers["task"], args=list(args), kwargs=dict(kwargs)))
                message.ack()
        finally:
            simple.close()


def purge(queue: str) -> None:
    with app.connection_for_write() as connection:
        connection.SimpleQueue(app.amqp.queues[queue]).clear()


@contextmanager
def unreachable() -> Iterator[None]:
    """Celery's broker moved to a loopback port where nothing listens, then put back: publishing
    fails for real, with kombu's own connection error after its retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = app.conf.get("broker_write_url")
    _publish_to(f"amqp://guest:guest@127.0.0.1:{port}//")
    try:
        yield
    finally:
        _publish_to(saved)


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """Ferry's Celery app publishes to another broker (a Redis of the test's own), then is put back."""
    saved = app.conf.get("broker_write_url")
    _publish_to(url)
    try:
        yield
    finally:
        _publish_to(saved)


def _publish_to(url: str | None) -> None:
    """Where the app publishes (broker_write_url: broker_url itself yields to CELERY_BROKER_URL in
    the environment). Celery and kombu keep pools for the old broker, so close and forget them."""
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_write_url = url


class OwnRabbitMQ:
    """A RabbitMQ node of the test's own, on free loopback ports, with its data, logs and
    rabbitmq.conf in `directory`: a test may give it settings (a consumer timeout) that the shared
    broker must never get. Stopped (its process group killed) by stop()."""

    def __init__(self, directory: Path, *, conf: str = ""):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port, dist_port = _free_port(), _free_port()
        self.node = f"ferrytest{self.port}@localhost"
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n{conf}")
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")  # not the system's (its NODENAME)
        env = dict(
            os.environ,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(dist_port),
            RABBITMQ_CONFIG_FILE=str(directory / "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=str(directory / "rabbitmq-env.conf"),
            RABBITMQ_MNESIA_BASE=str(directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(directory / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(directory / "enabled_plugins"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        self.log = directory / "server.out"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [RABBITMQ_SERVER], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def wait_ready(self, timeout: float = 90) -> OwnRabbitMQ:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"RabbitMQ {self.node} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with Connection(self.url, connect_timeout=2) as connection:
                    connection.ensure_connection(max_retries=1)
                return self
            except Exception:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"RabbitMQ {self.node} did not start in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def rabbitmq_server_missing() -> str | None:
    if not Path(RABBITMQ_SERVER).exists():
        return f"{RABBITMQ_SERVER} is missing (the rabbitmq-server package)"
    if os.geteuid() != 0:
        return "a RabbitMQ node of the test's own needs root here (the Erlang cookie of rabbitmq-server)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
