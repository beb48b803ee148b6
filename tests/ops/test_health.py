"""GET /health/ for a load balancer, and the staff-only detail with each host's last report."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from clusters.models import HostStatus
from config.celery import app as celery_app
from tests.factories import HostFactory, UserFactory

pytestmark = pytest.mark.django_db


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down():
    """Ferry publishes to a broker URL on a port where nothing listens: the broker is really down
    for every connection Ferry opens to publish (and so for the health check)."""
    saved = celery_app.conf.broker_write_url
    celery_app.conf.broker_write_url = f"redis://127.0.0.1:{unused_port()}/0"
    yield
    celery_app.conf.broker_write_url = saved


def test_health_answers_200_without_login_when_the_database_and_broker_answer():
    response = Client().get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_health_answers_503_naming_the_broker_when_it_is_down(broker_down):
    response = Client().get("/health/")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "unavailable",
        "failing": ["broker"],
    }


def test_health_does_not_tell_an_anonymous_caller_why_the_broker_is_down(broker_down):
    body = Client().get("/health/").content.decode()

    assert "127.0.0.1" not in body
    assert "redis" not in body


def test_health_detail_says_why_to_staff(broker_down):
    client = Client()
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/health/detail/")

    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False
    assert "127.0.0.1" in broker["detail"]
    assert response.json()["checks"]["database"]["ok"] is True


def test_health_detail_lists_each_hosts_last_report_age():
    now = timezone.now()
    fresh = HostFactory(name="fresh", capabilities_updated_at=now - timedelta(seconds=30))
    stale = HostFactory(name="stale", capabilities_updated_at=now - timedelta(hours=2))
    HostFactory(name="new", capabilities_updated_at=None, status=HostStatus.UNKNOWN)
    client = Client()
    client.force_login(UserFactory(is_staff=True))

    hosts = {host["name"]: host for host in client.get("/health/detail/").json()["hosts"]}

    assert 29 <= hosts["fresh"]["last_report_age_s"] < 60
    assert hosts["fresh"]["silent"] is False
    assert hosts["fresh"]["id"] == str(fresh.pk)
    assert 7199 <= hosts["stale"]["last_report_age_s"] < 7300
    assert hosts["stale"]["silent"] is True
    assert hosts["stale"]["queue"] == f"host.{stale.pk}"
    assert hosts["new"]["last_report_age_s"] is None
    assert hosts["new"]["summary"] == "has never reported"


def test_health_detail_is_for_staff_only():
    client = Client()
    assert client.get("/health/detail/").status_code == 302  # to the login page
    client.force_login(UserFactory(is_staff=False))
    assert client.get("/health/detail/").status_code == 403
