"""`ferry check`: a readable report of settings, database, broker and each host's agent; it
fails (exit status 1) when something Ferry needs does not answer."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from clusters.models import HostStatus
from core.audit import Actor
from migrations_app.services import agent_token_issue
from tests.factories import HostFactory
from tests.ops.test_health import broker_down  # noqa: F401  (a broker URL where nothing listens)

pytestmark = pytest.mark.django_db


def check(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("ferry_check", *args, stdout=out)
    except SystemExit as exit_:
        return out.getvalue(), int(exit_.code or 0)
    return out.getvalue(), 0


def test_a_healthy_ferry_is_ready():
    report, status = check()

    assert status == 0
    assert "Ready: 0 failed" in report
    assert "OK    every migration is applied" in report
    for section in ("Settings", "Database", "Broker", "Hosts (0)"):
        assert f"\n{section}\n" in report


def test_a_broker_that_does_not_answer_fails_the_check(broker_down):  # noqa: F811
    report, status = check()

    assert status == 1
    assert "FAIL  redis://" in report
    assert "does not answer" in report
    assert "check CELERY_BROKER_URL" in report


def test_each_hosts_agent_is_reported_with_what_to_do(settings):
    settings.FERRY_HOST_QUEUES = True
    HostFactory(name="fresh", capabilities_updated_at=timezone.now() - timedelta(seconds=20))
    HostFactory(name="silent", capabilities_updated_at=timezone.now() - timedelta(hours=3))
    HostFactory(name="never", capabilities_updated_at=None, status=HostStatus.UNKNOWN)
    tokened = HostFactory(name="tokened", capabilities_updated_at=None, status=HostStatus.UNKNOWN)
    agent_token_issue(actor=Actor.task("tests"), host=tokened)
    HostFactory(name="resting", capabilities_updated_at=None, status=HostStatus.MAINTENANCE)

    report, status = check()

    assert status == 0
    assert re.search(r"OK    fresh: up, last reported 2\d s ago", report)
    assert "WARN  silent: up, last reported 3.0 h ago" in report
    assert "is `ferry agent --host silent` running" in report
    assert "WARN  never: unknown, has never reported" in report
    assert "no agent token yet: ferry agent_token never, then start its agent: ferry agent --host never" in report
    assert "start its agent: ferry agent --host tokened" in report
    assert "ferry agent_token tokened" not in report
    assert "OK    resting: maintenance" in report
