"""Password reset exists only with a mail server, and is throttled."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from tests.factories import UserFactory

MAIL_SERVER = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
RESET_URLS = ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"]


@pytest.mark.parametrize("url", [*RESET_URLS, "/accounts/reset/MQ/set-password/"])
def test_without_a_mail_server_there_is_no_reset(db, settings, url):
    settings.FERRY_EMAIL_HOST = ""

    assert Client().get(url).status_code == 404
    assert Client().post(url, {"email": "a@example.com"}).status_code == 404


def test_with_a_mail_server_a_reset_mail_is_sent(db, settings):
    settings.FERRY_EMAIL_HOST, settings.MAILERS = "mail.example.com", MAIL_SERVER
    UserFactory(username="alice", email="alice@example.com")

    response = Client().post("/accounts/password_reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]


def test_reset_requests_are_throttled_per_address(db, settings):
    settings.FERRY_EMAIL_HOST, settings.MAILERS = "mail.example.com", MAIL_SERVER
    settings.FERRY_PASSWORD_RESET_LIMIT = 2
    client = Client(REMOTE_ADDR="192.0.2.7")
    for n in range(2):
        assert client.post("/accounts/password_reset/", {"email": f"u{n}@example.com"}).status_code == 302

    refused = client.post("/accounts/password_reset/", {"email": "u9@example.com"})

    assert refused.status_code == 429
    assert "Too many password reset requests" in refused.content.decode()


def test_reset_requests_are_throttled_per_mailbox_whatever_the_address(db, settings):
    settings.FERRY_EMAIL_HOST, settings.MAILERS = "mail.example.com", MAIL_SERVER
    settings.FERRY_PASSWORD_RESET_LIMIT = 2
    UserFactory(username="alice", email="alice@example.com")
    for n in range(2):
        Client(REMOTE_ADDR=f"192.0.2.{n}").post("/accounts/password_reset/", {"email": "alice@example.com"})

    refused = Client(REMOTE_ADDR="198.51.100.1").post("/accounts/password_reset/", {"email": "Alice@Example.com"})

    assert refused.status_code == 429
    assert len(mail.outbox) == 2


def test_the_mail_server_comes_from_the_environment(tmp_path):
    from tests.test_settings_file import setting_in_a_new_process

    assert setting_in_a_new_process(tmp_path, "MAILERS") == "{}"
    configured = setting_in_a_new_process(tmp_path, "MAILERS", FERRY_EMAIL_HOST="mail.example.com")
    assert "'host': 'mail.example.com'" in configured
