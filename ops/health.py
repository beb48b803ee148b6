"""Whether Ferry's parts answer: the database, the broker, and each host's agent.

Read by GET /health/ (for a load balancer), its staff-only detail view, `ferry check` and the job
pages (a queued job whose host's agent is silent says so). A probe never raises: it answers
with what failed, and how long it took.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from clusters.reports import AgentReport, agent_report, agent_reports, silent_after

log = logging.getLogger(__name__)

#: How long the broker may take to accept a connection before it counts as down.
BROKER_TIMEOUT_S = 3
__all__ = ["AgentReport", "Probe", "agent_report", "agent_reports", "broker", "checks", "database", "silent_after"]


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str
    seconds: float


def _timed(name: str, check) -> Probe:
    started = time.monotonic()
    try:
        detail = check()
    except Exception as error:
        log.warning("health: %s does not answer: %s", name, error)
        return Probe(name, False, f"{type(error).__name__}: {error}", time.monotonic() - started)
    return Probe(name, True, detail, time.monotonic() - started)


def database() -> Probe:
    def check() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return connection.vendor

    return _timed("database", check)


def broker() -> Probe:
    """A real connection to the broker Ferry publishes to (the filesystem broker: its folders)."""

    def check() -> str:
        from core.celery import app

        folders = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        if str(app.conf.broker_write_url or app.conf.broker_url).startswith("filesystem://"):
            for key in ("data_folder_out", "control_folder"):
                folder = folders.get(key)
                if folder and not os.access(folder, os.W_OK):
                    raise OSError(f"the filesystem broker's folder {folder} is not writable")
        with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)
            return conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type

    return _timed("broker", check)


def checks() -> list[Probe]:
    return [database(), broker()]
