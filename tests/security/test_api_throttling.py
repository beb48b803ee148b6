"""API rate limits (DRF throttling) on the real stack: 429 with a JSON detail and Retry-After."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.api.conftest import token_client


@override_settings(FERRY_API_RATE_USER="3/minute")
def test_a_user_over_the_rate_gets_429_with_a_json_detail(admin_user):
    client = token_client(admin_user)
    for _ in range(3):
        assert client.get("/api/clusters/").status_code == 200

    refused = client.get("/api/clusters/")

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert "throttled" in refused.json()["detail"].lower()
    assert int(refused["Retry-After"]) > 0


@override_settings(FERRY_API_RATE_USER="3/minute")
def test_the_user_rate_counts_per_user_whatever_the_authentication(admin_user, client_for):
    session = APIClient()
    session.force_login(admin_user)
    for _ in range(3):
        session.get("/api/clusters/")

    assert token_client(admin_user).get("/api/clusters/").status_code == 429
    assert client_for("read_only").get("/api/clusters/").status_code == 200


@override_settings(FERRY_API_RATE_ANON="2/minute")
def test_anonymous_clients_are_limited_per_address(db):
    client = APIClient(REMOTE_ADDR="192.0.2.7")
    for _ in range(2):
        assert client.get("/api/clusters/").status_code == 401

    assert client.get("/api/clusters/").status_code == 429
    assert APIClient(REMOTE_ADDR="192.0.2.8").get("/api/clusters/").status_code == 401


@pytest.mark.parametrize("rate", [None, ""])
def test_no_rate_means_no_limit(admin_user, settings, rate):
    settings.FERRY_API_RATE_USER = rate or None
    client = token_client(admin_user)

    assert all(client.get("/api/clusters/").status_code == 200 for _ in range(5))


def test_the_rates_come_from_the_environment(tmp_path):
    from tests.test_settings_file import setting_in_a_new_process

    assert setting_in_a_new_process(tmp_path, "FERRY_API_RATE_USER", FERRY_API_RATE_USER="10/second") == "10/second"
    assert setting_in_a_new_process(tmp_path, "FERRY_API_RATE_ANON", FERRY_API_RATE_ANON="") == "None"


@override_settings(FERRY_API_RATE_ANON="2/minute")
def test_guessing_tokens_is_throttled_per_address(db):
    client = APIClient(REMOTE_ADDR="192.0.2.7")
    for guess in range(2):
        client.credentials(HTTP_AUTHORIZATION=f"Token guess{guess}")
        assert client.get("/api/clusters/").status_code == 401

    client.credentials(HTTP_AUTHORIZATION="Token guess3")
    refused = client.get("/api/clusters/")

    assert refused.status_code == 429
    assert "detail" in refused.json()
