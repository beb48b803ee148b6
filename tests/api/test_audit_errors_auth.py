"""The audit log, the shape of errors, authentication, and the schema and docs pages."""

import pytest
from rest_framework.test import APIClient

from clusters.services import host_report_capabilities
from core.audit import Actor
from core.models import AuditEntry
from tests.factories import ZEROCOPY_HOST, UserFactory, api_key

pytestmark = pytest.mark.django_db

AUDIT_FIELDS = {"id", "at", "actor", "action", "object_type", "object_id", "object_repr", "before", "after"} | {
    "request_id"
}


def test_the_audit_log_lists_every_api_change_newest_first(api):
    cluster = api.post("/api/clusters/", {"name": "prod"}, format="json").json()
    api.patch(f"/api/clusters/{cluster['id']}/", {"description": "Production"}, format="json")
    api.delete(f"/api/clusters/{cluster['id']}/")

    entries = api.get("/api/audit-log/").json()["results"]

    assert [entry["action"] for entry in entries] == ["delete", "update", "create"]
    assert all(set(entry) == AUDIT_FIELDS for entry in entries)
    assert {entry["object_id"] for entry in entries} == {cluster["id"]}
    assert {entry["actor"] for entry in entries} == {"admin"}
    update = entries[1]
    assert (update["before"], update["after"]) == ({"description": ""}, {"description": "Production"})
    assert api.get(f"/api/audit-log/{update['id']}/").json() == update


def test_changes_made_by_tasks_are_recorded_with_the_task_as_actor(api, estate):
    host_report_capabilities(
        actor=Actor.task("ferry.refresh_capabilities"),
        host=estate.source,
        capabilities={**ZEROCOPY_HOST, "cpu_count": 64},
    )
    entry = api.get("/api/audit-log/", {"actor": "ferry.refresh_capabilities"}).json()["results"][0]
    assert (entry["action"], entry["object_type"], entry["object_id"]) == (
        "capabilities",
        "host",
        str(estate.source.pk),
    )


def test_the_audit_log_is_filtered_and_refuses_bad_filters(api, estate):
    assert api.get("/api/audit-log/", {"action": "update", "object_type": "cluster"}).json()["count"] == 1
    assert (
        api.get("/api/audit-log/", {"at_after": "2000-01-01T00:00:00Z"}).json()["count"] == AuditEntry.objects.count()
    )
    assert api.get("/api/audit-log/", {"at_after": "2999-01-01T00:00:00+14:00"}).json()["count"] == 0
    for bad in ("yesterday", "2026-01-01", "2026-01-01T00:00:00+25:00"):
        response = api.get("/api/audit-log/", {"at_after": bad})
        assert response.status_code == 400, bad
        assert "at_after" in response.json()


def test_the_audit_log_is_read_only(api, estate):
    entry = AuditEntry.objects.latest("pk")
    assert api.post("/api/audit-log/", {}, format="json").status_code == 405
    assert api.delete(f"/api/audit-log/{entry.pk}/").status_code == 405


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: c.generic("POST", "/api/clusters/", "{not json", content_type="application/json"), 400),
        (lambda c: c.post("/api/clusters/", "name=x", content_type="application/x-www-form-urlencoded"), 415),
        (lambda c: c.post("/api/clusters/", ["a list"], format="json"), 400),
        (lambda c: c.delete("/api/clusters/"), 405),
        (lambda c: c.get("/api/no-such-thing/"), 404),
        (lambda c: c.get("/api/clusters/?limit=0"), 400),
        (lambda c: c.get("/api/clusters/?offset=-1"), 400),
    ],
)
def test_errors_are_json(api, call, status):
    response = call(api)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()


def test_pages_are_limited_and_linked(api, estate):
    body = api.get("/api/vms/", {"limit": 1}).json()
    assert (body["count"], len(body["results"])) == (3, 1)
    assert "offset=1" in body["next"]


def test_anonymous_requests_are_asked_to_authenticate():
    response = APIClient().get("/api/clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert client.get("/api/clusters/").status_code == 401


def test_session_writes_need_the_csrf_token(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/clusters/").status_code == 200

    refused = client.post("/api/clusters/", {"name": "prod"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    client.get("/accounts/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/clusters/", {"name": "prod"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_token_writes_need_no_csrf_token(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key(admin_user)}")
    assert client.post("/api/clusters/", {"name": "prod"}, format="json").status_code == 201


def test_a_user_without_view_permission_reads_nothing(db):
    client = APIClient()
    client.force_login(UserFactory())
    assert client.get("/api/clusters/").status_code == 403


def test_the_schema_and_the_docs_are_served_locally_to_logged_in_users(admin_user):
    anonymous = APIClient()
    assert anonymous.get("/api/schema/").status_code == 401
    assert anonymous.get("/api/docs/")["Location"].startswith("/accounts/login/?next=/api/docs/")

    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/vms/{id}/migrate/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
