"""Django admin's API tokens: a read-only list for superusers, no keys, no adding; revoking audited."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from core.models import ApiToken, AuditEntry
from tests.factories import UserFactory, api_key

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/core/apitoken/"


@pytest.fixture
def client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_superusers_see_every_token_without_its_key_or_hash(client):
    key = api_key(UserFactory(username="scripter"), name="cron")
    token = ApiToken.objects.get()

    listing = client.get(CHANGELIST).content.decode()
    detail = client.get(f"{CHANGELIST}{token.pk}/change/").content.decode()

    assert "cron" in listing and "scripter" in listing and token.prefix in listing
    for html in (listing, detail):
        assert key not in html and token.key_hash not in html
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert f'href="{CHANGELIST}add/"' not in listing


def test_staff_without_superuser_do_not_see_tokens(db):
    staff = UserFactory(username="staff", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(CHANGELIST).status_code == 403


def test_revoking_from_admin_goes_through_the_audited_service(client, admin_user):
    api_key(UserFactory(username="scripter"), name="cron")
    token = ApiToken.objects.get()

    response = client.post(
        CHANGELIST, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [str(token.pk)], "post": "yes"}
    )

    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    entry = AuditEntry.objects.get(object_type="token", action="delete")
    assert entry.actor == admin_user.username and entry.before["user"] == "scripter"
    assert token.key_hash not in str(entry.before)
