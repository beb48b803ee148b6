"""/tokens/: a logged-in user lists, creates (the key shown once) and revokes their own API tokens."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from core.models import ApiToken, AuditEntry
from tests.factories import UserFactory, api_key
from tests.pages.world import read_only_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_earlier_throttling():
    """The creation throttle counts in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


def shown_key(html: str) -> str:
    match = re.search(r'id="new-token-key" class="mono" value="([^"]+)"', html)
    assert match, "the new key is not on the page"
    return match.group(1)


def test_the_user_menu_links_to_the_tokens_page(reader_client):
    html = reader_client.get("/").content.decode()
    assert 'href="/tokens/"' in html


def test_anonymous_visitors_are_sent_to_the_login_page(db):
    response = Client().get("/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert Client().post("/tokens/", {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


def test_a_read_only_user_creates_a_token_whose_key_is_shown_once(reader_client, reader):
    response = reader_client.post("/tokens/", {"name": "nightly report", "expires_days": "30"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    key = shown_key(html)
    assert "not shown again" in html and 'data-copy="new-token-key"' in html
    token = ApiToken.objects.get(user=reader)
    assert token.name == "nightly report" and token.expires > timezone.now()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    entry = AuditEntry.objects.get(object_type="token", action="create")
    assert entry.actor == reader.username and key not in str(entry.after)

    listed = reader_client.get("/tokens/").content.decode()
    assert "nightly report" in listed and key[:8] in listed
    assert key not in listed


def test_the_key_from_the_page_works_on_the_api(reader_client):
    key = shown_key(reader_client.post("/tokens/", {"name": "script"}).content.decode())
    api = Client(headers={"Authorization": f"Token {key}"})
    assert api.get("/api/clusters/").status_code == 200


def test_form_errors_are_shown_and_nothing_is_created(reader_client, reader):
    api_key(reader, name="taken")
    for data, message in (
        ({"name": ""}, "This field is required."),
        ({"name": "taken"}, "You already have a token named"),
        ({"name": "x", "expires_days": "0"}, "greater than or equal to 1"),
    ):
        html = reader_client.post("/tokens/", data).content.decode()
        assert message in html, data
        assert 'id="new-token-key"' not in html
    assert ApiToken.objects.filter(user=reader).count() == 1


def test_revoking_asks_first_then_revokes_and_audits(reader_client, reader):
    api_key(reader, name="old script")
    token = ApiToken.objects.get(user=reader)
    url = f"/tokens/{token.pk}/revoke/"
    assert f'href="{url}"' in reader_client.get("/tokens/").content.decode()

    confirm = reader_client.get(url).content.decode()
    assert "Revoke API token old script" in confirm
    assert ApiToken.objects.filter(pk=token.pk).exists()

    response = reader_client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == "/tokens/"
    assert "Revoked API token old script" in response.content.decode()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert AuditEntry.objects.filter(object_type="token", action="delete", object_id=str(token.pk)).exists()


def test_another_users_token_is_not_listed_nor_revocable(reader_client):
    other = UserFactory(username="someone-else")
    api_key(other, name="theirs")
    token = ApiToken.objects.get(user=other)

    assert "theirs" not in reader_client.get("/tokens/").content.decode()
    assert reader_client.get(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert reader_client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert not AuditEntry.objects.filter(object_type="token").exists()


def test_writes_need_the_csrf_token(reader):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    api_key(reader, name="kept")
    token = ApiToken.objects.get(user=reader)

    assert client.post("/tokens/", {"name": "forged"}).status_code == 403
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 403
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["kept"]


def test_expired_tokens_are_marked(reader_client, reader):
    api_key(reader, name="stale", expires=timezone.now() - timedelta(days=1))
    html = reader_client.get("/tokens/").content.decode()
    assert "expired</span>" in html


def test_creating_tokens_on_the_page_is_throttled(db):
    user = read_only_user()
    client = Client()
    client.force_login(user)
    for index in range(20):
        assert 'id="new-token-key"' in client.post("/tokens/", {"name": f"t{index}"}).content.decode()

    refused = client.post("/tokens/", {"name": "one too many"})

    assert refused.status_code == 429
    assert "too many tokens" in refused.content.decode()
    assert ApiToken.objects.filter(user=user).count() == 20
