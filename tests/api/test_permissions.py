"""Every role against every endpoint and every method, as the matrix (tests/api/matrix.py) says.

Refused requests change nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, Permission

from core.models import AuditEntry
from core.roles import FERRY_APPS, OPERATOR_GROUP, READ_ONLY_GROUP, roles_ensure
from tests.api.conftest import ROLES, Estate
from tests.api.figures import record
from tests.api.matrix import MATRIX, METHODS, ROLE_PERMISSIONS, ROUTES, expected_status

pytestmark = pytest.mark.django_db


def test_the_matrix_covers_every_role_endpoint_and_method():
    assert len(MATRIX) == len(ROLES) * len(ROUTES) * len(METHODS) == 5 * 28 * 5
    record(
        "permission_matrix", f"{len(ROLES)} roles x {len(ROUTES)} endpoints x {len(METHODS)} methods = {len(MATRIX)}"
    )


def test_the_roles_hold_what_the_matrix_says():
    roles_ensure()
    view = set(Permission.objects.filter(content_type__app_label__in=FERRY_APPS, codename__startswith="view_"))
    assert set(Group.objects.get(name=READ_ONLY_GROUP).permissions.all()) == view
    operator = {
        f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=OPERATOR_GROUP).permissions.all()
    }
    assert operator - {f"{p.content_type.app_label}.{p.codename}" for p in view} == ROLE_PERMISSIONS["operator"] - {
        "view"
    }


@pytest.mark.parametrize(("role", "route", "method"), MATRIX, ids=lambda v: getattr(v, "name", v))
def test_permission(client_for, estate, role, route, method):
    client = client_for(role)
    expected = expected_status(role, route, method)
    allowed = route.allowed.get(method)
    body = allowed.body(estate) if allowed is not None and allowed.body is not None else None
    audit_before = AuditEntry.objects.count()

    response = getattr(client, method.lower())(route.url(estate), body, format="json")

    assert response.status_code == expected, response.content[:300]
    assert response.status_code == 204 or response["Content-Type"].startswith("application/json")
    if expected >= 400:
        assert "detail" in response.json()
        assert AuditEntry.objects.count() == audit_before, "a refused request changed something"
    elif method != "GET":
        assert AuditEntry.objects.count() > audit_before, "a write left no audit record"


# ------------------------------------------------------------------------------ the agent API
# /api/agent/ takes only an agent token, which acts for its own host only: every role, by user
# token or by session, is refused (401 without any credential, else 403), and so is the agent
# token of another host; the right host's agent token gets its answer. Nothing refused is audited.
AGENT_ROUTES: list[tuple[str, str, Callable[[Estate], str], Callable[[Estate], dict] | None, int]] = [
    ("agent-host", "GET", lambda e: "/api/agent/host/", None, 200),
    ("agent-capabilities", "POST", lambda e: "/api/agent/capabilities/", lambda e: {"capabilities": _CAPS}, 200),
    ("agent-inventory", "POST", lambda e: "/api/agent/inventory/", lambda e: {"domains": []}, 200),
    ("agent-job", "GET", lambda e: f"/api/agent/jobs/{e.job.pk}/", None, 200),
    ("agent-job-claim", "POST", lambda e: f"/api/agent/jobs/{e.job.pk}/claim/", None, 200),
    (
        "agent-job-progress",
        "POST",
        lambda e: f"/api/agent/jobs/{e.job.pk}/progress/",
        lambda e: {"progress": 10, "stats": {}},
        200,
    ),
    (
        "agent-job-finish",
        "POST",
        lambda e: f"/api/agent/jobs/{e.job.pk}/finish/",
        lambda e: {"result": {"ok": False}, "source_state": "up", "destination_state": None},
        200,
    ),
    (
        "agent-job-reconcile",
        "POST",
        lambda e: f"/api/agent/jobs/{e.job.pk}/reconcile/",
        lambda e: {"source_state": "up", "destination_state": None, "aborted": False},
        200,
    ),
]
_CAPS = {  # a full report: a partial one is refused
    "libvirt_version": "10.0.0",
    "qemu_version": "8.2.0",
    "agent_version": "1.0.0",
    "zerocopy_migrations": True,
    "parallel_migrations": True,
    "cpu_count": 4,
    "memory_mib": 8192,
    "link_speed_mbps": 10000,
}
AGENT_CALLERS = [f"{role}-token" for role in ROLES] + [f"{role}-session" for role in ROLES[1:]]
AGENT_CALLERS += ["agent-of-another-host", "agent-of-its-host"]


def _agent_caller(caller: str, estate: Estate):
    from rest_framework.test import APIClient

    from core.audit import Actor
    from migrations_app.services import agent_token_issue
    from tests.api.conftest import token_client, user_in_role

    if caller.startswith("agent-"):
        host = estate.source if caller == "agent-of-its-host" else estate.destination
        _, key = agent_token_issue(actor=Actor.task("tests"), host=host)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client
    role, how = caller.rsplit("-", 1)
    user = user_in_role(role)
    if how == "token":
        return token_client(user)
    client = APIClient()
    client.force_login(user)
    return client


def _source_rows(estate: Estate) -> tuple:
    from clusters.models import VM, Host

    host = Host.objects.get(pk=estate.source.pk)
    return host.version, host.capabilities, sorted(VM.objects.filter(host=host).values_list("pk", "version"))


@pytest.mark.parametrize(
    ("route", "caller"),
    list(itertools.product(AGENT_ROUTES, AGENT_CALLERS)),
    ids=lambda v: v[0] if isinstance(v, tuple) else v,
)
def test_agent_api_permission(estate, route, caller):
    name, method, url, body, allowed = route
    client = _agent_caller(caller, estate)
    audit_before = AuditEntry.objects.count()
    source_before = _source_rows(estate)

    response = getattr(client, method.lower())(url(estate), body(estate) if body else None, format="json")

    if caller == "agent-of-its-host":
        assert response.status_code == allowed, response.content[:300]
        return
    if caller == "agent-of-another-host" and "/jobs/" not in url(estate):
        # No host in the path: another host's token reports for, and reads, its own host only.
        assert response.status_code == allowed, response.content[:300]
        assert _source_rows(estate) == source_before
        if name == "agent-host":
            assert response.json()["id"] == str(estate.destination.pk)
        return
    expected = {401} if caller == "anonymous-token" else {403}
    if caller.endswith("-session"):
        expected = {401, 403}  # no session is an agent: unauthenticated there
    assert response.status_code in expected, (name, response.status_code, response.content[:300])
    assert "detail" in response.json()
    assert AuditEntry.objects.count() == audit_before, "a refused request changed something"
