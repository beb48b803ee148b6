"""Login lockout (django-axes) on the real login pages, and its entry in the audit log."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from core.models import AuditEntry
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", password=PASSWORD, is_staff=True)


def post_login(client: Client, url: str, password: str, username: str = "alice"):
    return client.post(url, {"username": username, "password": password, "next": "/"})


@pytest.mark.parametrize("url", LOGINS)
def test_the_right_password_after_too_many_wrong_ones_is_refused_with_a_clear_message(alice, settings, url):
    client = Client()
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT - 1):
        assert post_login(client, url, "wrong").status_code == 200

    locked = post_login(client, url, "wrong")
    after = post_login(client, url, PASSWORD)

    assert locked.status_code == 429
    assert after.status_code == 429
    assert "Too many failed logins" in after.content.decode()
    assert after["Retry-After"] == str(settings.FERRY_LOGIN_COOLOFF_S)
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_in_the_audit_log_with_the_address(alice, settings):
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT):
        post_login(Client(REMOTE_ADDR="192.0.2.7"), "/accounts/login/", "wrong")

    entry = AuditEntry.objects.get(action="login_locked_out")
    assert (entry.actor, entry.user, entry.object_type) == ("alice", alice, "user")
    assert entry.after["ip_address"] == "192.0.2.7"
    assert entry.after["path"] == "/accounts/login/"


def test_a_lockout_of_an_unknown_username_is_audited_too(db, settings):
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT):
        post_login(Client(), "/accounts/login/", "wrong", username="nobody")

    entry = AuditEntry.objects.get(action="login_locked_out")
    assert (entry.actor, entry.user, entry.object_id) == ("nobody", None, "")


def test_the_lockout_holds_for_the_pair_so_the_same_user_still_logs_in_from_elsewhere(alice, settings):
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT):
        post_login(Client(REMOTE_ADDR="192.0.2.7"), "/accounts/login/", "wrong")

    elsewhere = post_login(Client(REMOTE_ADDR="198.51.100.9"), "/accounts/login/", PASSWORD)

    assert elsewhere.status_code == 302


def test_a_good_password_before_the_limit_clears_the_count(alice, settings):
    client = Client()
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT - 1):
        post_login(client, "/accounts/login/", "wrong")
    assert post_login(client, "/accounts/login/", PASSWORD).status_code == 302
    client.logout()

    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT - 1):
        assert post_login(client, "/accounts/login/", "wrong").status_code == 200
    assert post_login(client, "/accounts/login/", PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2, FERRY_LOGIN_FAILURE_LIMIT=2)
def test_the_limit_is_a_setting(alice):
    client = Client()
    post_login(client, "/accounts/login/", "wrong")

    assert post_login(client, "/accounts/login/", "wrong").status_code == 429


def test_an_admin_lifts_a_lockout(alice, settings):
    client = Client()
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT):
        post_login(client, "/accounts/login/", "wrong")

    call_command("axes_reset", verbosity=0)

    assert post_login(client, "/accounts/login/", PASSWORD).status_code == 302


def test_the_ovirt_sso_is_locked_out_too_and_answers_in_json(alice, settings):
    client = Client()
    data = {"grant_type": "password", "username": "alice@internal", "password": "wrong"}
    for _ in range(settings.FERRY_LOGIN_FAILURE_LIMIT):
        client.post("/ovirt-engine/sso/oauth/token", data)

    refused = client.post("/ovirt-engine/sso/oauth/token", data | {"password": PASSWORD})

    assert refused.status_code == 429
    assert refused.json()["error_code"] == "locked_out"


def test_the_limit_and_cool_off_come_from_the_environment(tmp_path):
    from tests.test_settings_file import setting_in_a_new_process

    assert setting_in_a_new_process(tmp_path, "AXES_FAILURE_LIMIT", FERRY_LOGIN_FAILURE_LIMIT="7") == "7"
    assert setting_in_a_new_process(tmp_path, "AXES_COOLOFF_TIME", FERRY_LOGIN_COOLOFF_S="60") == "0:01:00"
