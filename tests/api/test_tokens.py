"""Users' API tokens: the key is shown once and stored hashed; each user manages only their own."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiToken, AuditEntry
from tests.api.conftest import user_in_role
from tests.factories import UserFactory, api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_earlier_throttling():
    """The creation throttle counts in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def create(client: APIClient, **body) -> dict:
    response = client.post("/api/tokens/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_key_is_shown_once_and_only_its_hash_is_stored():
    user = user_in_role("read_only")
    client = session_client(user)

    created = create(client, name="backup script")

    assert set(created) == {"id", "name", "key", "created", "expires"}
    key = created["key"]
    assert len(key) >= 43  # 256 random bits
    stored = ApiToken.objects.get(pk=created["id"])
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.prefix == key[:8]
    listed = client.get("/api/tokens/").json()["results"]
    assert [row["name"] for row in listed] == ["backup script"]
    assert "key" not in listed[0] and listed[0]["prefix"] == key[:8]
    assert "key" not in client.get(f"/api/tokens/{created['id']}/").json()


def test_a_database_dump_holds_no_key():
    user = user_in_role("editor")
    key = create(session_client(user), name="dumped")["key"]
    key_client(key).get("/api/clusters/")  # used once, so last_used is stored too

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)

    assert ApiToken.objects.filter(user=user).exists()
    assert '"core.apitoken"' in dump.getvalue()
    assert key not in dump.getvalue()


def test_the_audit_trail_records_create_and_revoke_without_key_or_hash():
    user = user_in_role("no_perms")
    client = session_client(user)
    created = create(client, name="ci")
    assert client.delete(f"/api/tokens/{created['id']}/").status_code == 204

    entries = AuditEntry.objects.filter(object_type="token", object_id=created["id"]).order_by("pk")
    assert [(e.action, e.actor) for e in entries] == [("create", user.username), ("delete", user.username)]
    digest = hashlib.sha256(created["key"].encode()).hexdigest()
    for entry in entries:
        text = str(entry.before) + str(entry.after) + entry.object_repr
        assert created["key"] not in text and digest not in text
        assert "key_hash" not in text
    assert entries[0].after["name"] == "ci"


def test_the_key_authenticates_as_its_user_and_records_its_use():
    user = user_in_role("read_only")
    created = create(session_client(user), name="reader")

    response = key_client(created["key"]).get("/api/clusters/")

    assert response.status_code == 200
    token = ApiToken.objects.get(pk=created["id"])
    assert token.last_used is not None
    first_use = token.last_used
    key_client(created["key"]).get("/api/clusters/")
    token.refresh_from_db()
    assert token.last_used == first_use  # written at most once a minute


def test_last_used_moves_on_after_a_minute():
    user = user_in_role("read_only")
    key = api_key(user, name="old")
    ApiToken.objects.filter(user=user).update(last_used=timezone.now() - timedelta(minutes=2))
    before = ApiToken.objects.get(user=user).last_used

    assert key_client(key).get("/api/clusters/").status_code == 200

    assert ApiToken.objects.get(user=user).last_used > before


def test_an_expired_token_is_refused_with_a_clear_message():
    user = user_in_role("read_only")
    key = api_key(user, expires=timezone.now() - timedelta(seconds=1))

    response = key_client(key).get("/api/clusters/")

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_is_refused():
    user = user_in_role("read_only")
    created = create(session_client(user), name="to revoke")
    client = key_client(created["key"])
    assert client.get("/api/clusters/").status_code == 200

    assert client.delete(f"/api/tokens/{created['id']}/").status_code == 204

    refused = client.get("/api/clusters/")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Invalid token."
    assert not ApiToken.objects.filter(pk=created["id"]).exists()


def test_an_inactive_users_token_is_refused():
    user = user_in_role("editor")
    key = api_key(user)
    user.is_active = False
    user.save()

    response = key_client(key).get("/api/clusters/")

    assert response.status_code == 401
    assert "inactive" in response.json()["detail"]


def test_an_unknown_or_overlong_key_is_refused():
    assert key_client("x" * 43).get("/api/clusters/").status_code == 401
    assert key_client("x" * 5000).get("/api/clusters/").status_code == 401


def test_nobody_sees_or_revokes_another_users_token():
    owner, other = user_in_role("editor"), UserFactory(username="other", is_superuser=True, is_staff=True)
    created = create(session_client(owner), name="mine")
    intruder = session_client(other)

    assert intruder.get("/api/tokens/").json()["results"] == []
    assert intruder.get(f"/api/tokens/{created['id']}/").status_code == 404
    assert intruder.delete(f"/api/tokens/{created['id']}/").status_code == 404

    assert key_client(created["key"]).get("/api/clusters/").status_code == 200
    assert not AuditEntry.objects.filter(object_type="token", action="delete").exists()


def test_a_malformed_id_is_a_json_404():
    response = session_client(user_in_role("read_only")).get("/api/tokens/not-a-uuid/")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_names_are_unique_per_user_and_required():
    first, second = session_client(user_in_role("read_only")), session_client(user_in_role("operator"))
    create(first, name="nightly")

    taken = first.post("/api/tokens/", {"name": "nightly"}, format="json")
    assert taken.status_code == 400
    assert "nightly" in taken.json()["name"][0]
    create(second, name="nightly")
    assert first.post("/api/tokens/", {}, format="json").json() == {"name": ["This field is required."]}
    assert "name" in first.post("/api/tokens/", {"name": "a\x00b"}, format="json").json()
    assert "name" in first.post("/api/tokens/", {"name": "x" * 101}, format="json").json()


def test_expiry_is_a_date_time_or_a_number_of_days():
    client = session_client(user_in_role("read_only"))
    later = timezone.now() + timedelta(days=3)

    by_time = create(client, name="by time", expires=later.isoformat())
    by_days = create(client, name="by days", expires_days=30)
    never = create(client, name="never")

    assert abs(ApiToken.objects.get(pk=by_time["id"]).expires - later) < timedelta(seconds=1)
    in_30_days = ApiToken.objects.get(pk=by_days["id"]).expires - timezone.now()
    assert timedelta(days=29, hours=23) < in_30_days <= timedelta(days=30)
    assert never["expires"] is None
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert "expires" in client.post("/api/tokens/", {"name": "past", "expires": past}, format="json").json()
    both = client.post("/api/tokens/", {"name": "both", "expires": later.isoformat(), "expires_days": 2}, format="json")
    assert both.status_code == 400
    assert client.post("/api/tokens/", {"name": "zero", "expires_days": 0}, format="json").status_code == 400
    assert client.post("/api/tokens/", {"name": "text", "expires_days": "5"}, format="json").status_code == 400


def test_a_token_may_rotate_itself_but_not_outlive_itself():
    user = user_in_role("read_only")
    ends = timezone.now() + timedelta(days=7)
    old_key = api_key(user, name="old", expires=ends)
    client = key_client(old_key)

    too_long = client.post("/api/tokens/", {"name": "longer", "expires_days": 30}, format="json")
    assert too_long.status_code == 400
    assert "no later than itself" in too_long.json()["expires"][0]
    new = create(client, name="new")
    assert ApiToken.objects.get(pk=new["id"]).expires == ends
    old_id = ApiToken.objects.get(name="old").pk
    assert client.delete(f"/api/tokens/{old_id}/").status_code == 204

    assert key_client(new["key"]).get("/api/tokens/").json()["results"][0]["name"] == "new"
    assert client.get("/api/tokens/").status_code == 401


def test_a_token_that_never_expires_may_create_one_that_never_expires():
    client = key_client(api_key(user_in_role("read_only"), name="forever"))
    assert create(client, name="also forever")["expires"] is None


def test_lists_refuse_unknown_parameters_and_sort_by_their_columns():
    client = session_client(user_in_role("read_only"))
    for name in ("b", "a", "c"):
        create(client, name=name)

    refused = client.get("/api/tokens/", {"search": "a", "limit": 1})
    assert refused.status_code == 400
    assert refused.json() == {"search": ["Unknown query parameter; this list reads limit, name, offset, ordering."]}
    ordered = client.get("/api/tokens/", {"ordering": "name"}).json()["results"]
    assert [row["name"] for row in ordered] == ["a", "b", "c"]
    assert client.get("/api/tokens/", {"name": "b"}).json()["count"] == 1
    assert client.get("/api/tokens/", {"ordering": "key_hash"}).status_code == 400


def test_creating_tokens_is_throttled_per_user():
    user = user_in_role("read_only")
    client = session_client(user)
    for index in range(20):
        create(client, name=f"t{index}")

    throttled = client.post("/api/tokens/", {"name": "one too many"}, format="json")

    assert throttled.status_code == 429
    assert "throttled" in throttled.json()["detail"]
    assert client.get("/api/tokens/").status_code == 200  # only creating is throttled
    assert (
        session_client(user_in_role("operator")).post("/api/tokens/", {"name": "x"}, format="json").status_code == 201
    )


def test_the_schema_documents_the_tokens_endpoint():
    schema = session_client(user_in_role("read_only")).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    create_op = schema["paths"]["/api/tokens/"]["post"]
    answer = create_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][answer]["properties"]) == {"id", "name", "key", "created", "expires"}
    assert "429" in create_op["responses"]
    assert set(schema["paths"]["/api/tokens/{id}/"]) - {"parameters"} == {"get", "delete"}


def test_create_api_token_prints_a_working_key_as_its_last_line():
    user = user_in_role("read_only")
    out = io.StringIO()

    call_command("create_api_token", user.username, "--name", "deploy", "--expires-days", "7", stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(user=user, name="deploy")
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert timedelta(days=6) < token.expires - timezone.now() <= timedelta(days=7)
    assert key_client(key).get("/api/clusters/").status_code == 200
    assert AuditEntry.objects.get(object_type="token").actor == "create_api_token"


def test_create_api_token_refuses_what_it_cannot_do():
    user = user_in_role("read_only")
    call_command("create_api_token", user.username, "--name", "taken", stdout=io.StringIO())
    for args, message in (
        (["nobody"], "No user named"),
        ([user.username, "--name", "taken"], "already have a token named"),
        ([user.username, "--expires-days", "0"], "from 1 to"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("create_api_token", *args, stdout=io.StringIO())
    assert ApiToken.objects.filter(user=user).count() == 1


# ------------------------------------------------------------------------------ everyone's tokens
def test_an_admin_lists_every_users_tokens_with_their_owner_and_never_a_key(admin_user):
    owner = UserFactory(username="alice")
    api_key(owner, name="backup script")
    key = api_key(admin_user, name="mine")

    response = key_client(key).get("/api/admin-tokens/?user=alice")

    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert (listed["user"], listed["name"]) == ("alice", "backup script")
    assert set(listed) == {"id", "user", "name", "prefix", "created", "expires", "last_used"}


def test_an_admin_revokes_another_users_token_and_it_is_audited(admin_user):
    owner = UserFactory(username="alice")
    revoked = api_key(owner, name="backup script")
    token = ApiToken.objects.get(user=owner)

    response = key_client(api_key(admin_user, name="mine")).delete(f"/api/admin-tokens/{token.pk}/")

    assert response.status_code == 204
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert key_client(revoked).get("/api/tokens/").status_code == 401
    entry = AuditEntry.objects.get(action="delete", object_id=str(token.pk))
    assert entry.actor == "admin"


@pytest.mark.parametrize("role", ["read_only", "operator", "no_perms"])
def test_other_roles_may_not_see_everyones_tokens(role):
    owner = UserFactory(username="alice")
    api_key(owner, name="backup script")
    token = ApiToken.objects.get(user=owner)
    client = key_client(api_key(user_in_role(role), name="mine"))

    assert client.get("/api/admin-tokens/").status_code == 403
    assert client.delete(f"/api/admin-tokens/{token.pk}/").status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()
