"""The suite's real broker, read back: what Ferry published, taken off a queue.

Ferry publishes through Celery as it always does (CELERY_BROKER_URL: kombu's filesystem broker by
default, Redis or RabbitMQ in CI); a test then takes the messages off the queue with kombu, as a
worker would, and sees the task's name and arguments.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kombu import pools

from config.celery import app


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
