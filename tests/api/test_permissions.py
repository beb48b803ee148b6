"""Every role against every endpoint and every method.

Reads need a login and view_<model>; writes need the model permission (custom actions name theirs:
migrate = add_migrationjob, cancel = change_migrationjob, refresh/maintenance/activate =
operate_host). Operators hold operate_host but not change_host: they run hosts, never edit them.
Anonymous requests get 401; a logged-in user without the permission 403; a method the endpoint does
not have 405 once the method's permission is held. Refused requests change nothing.
/api/tokens/ needs no permission: every logged-in user manages their own tokens.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group, Permission

from core.models import ApiToken, AuditEntry
from core.roles import FERRY_APPS, OPERATOR_GROUP, READ_ONLY_GROUP, roles_ensure
from tests.api.conftest import ROLES, Estate
from tests.api.figures import record

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_ACTION = {"GET": "view", "POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}
ALL_FERRY = "*"
LOGGED_IN = "logged in"  # a route's model for endpoints every logged-in user may use
# What each role holds, written out here so that the matrix is a specification, not a mirror.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    "anonymous": set(),
    "no_perms": set(),
    "read_only": {"view"},
    "operator": {
        "view",
        "migrations_app.add_migrationjob",
        "migrations_app.change_migrationjob",
        "clusters.operate_host",
    },
    "editor": {ALL_FERRY},
}


@dataclass(frozen=True)
class Allowed:
    status: int
    body: Callable[[Estate], dict] | None = None
    permission: str | None = None  # None: the method's own permission on the route's model


@dataclass(frozen=True)
class Route:
    name: str
    model: str  # app_label.model_name, or LOGGED_IN
    url: Callable[[Estate], str]
    allowed: dict[str, Allowed] = field(default_factory=dict)


def _host_body(estate: Estate, name: str) -> dict:
    return {"name": name, "cluster": str(estate.cluster.pk), "address": "10.9.9.9", "libvirt_uri": "qemu:///system"}


def _vm_body(estate: Estate, name: str) -> dict:
    return {"name": name, "uuid": str(uuid.uuid4()), "host": str(estate.source.pk), "memory_mib": 1024, "vcpus": 2}


def _own_token(estate: Estate) -> str:
    """The token the request authenticates with: the latest one (client_for makes it after the estate)."""
    latest = ApiToken.objects.order_by("created").last()
    return str(latest.pk if latest is not None else uuid.uuid4())


ROUTES = [
    Route("cluster-levels", "clusters.clusterlevel", lambda e: "/api/cluster-levels/", {"GET": Allowed(200)}),
    Route(
        "cluster-level",
        "clusters.clusterlevel",
        lambda e: "/api/cluster-levels/4.8/",
        {
            "GET": Allowed(200),
            "PUT": Allowed(200, lambda e: {"parallel_migrations_supported": False}),
            "PATCH": Allowed(200, lambda e: {"parallel_migrations_supported": False}),
        },
    ),
    Route(
        "migration-policies",
        "policies.migrationpolicy",
        lambda e: "/api/migration-policies/",
        {"GET": Allowed(200), "POST": Allowed(201, lambda e: {"name": "New policy"})},
    ),
    Route(
        "migration-policy",
        "policies.migrationpolicy",
        lambda e: f"/api/migration-policies/{e.policy.pk}/",
        {
            "GET": Allowed(200),
            "PUT": Allowed(200, lambda e: {"name": "Renamed policy"}),
            "PATCH": Allowed(200, lambda e: {"description": "Slower"}),
            "DELETE": Allowed(204),
        },
    ),
    Route(
        "clusters",
        "clusters.cluster",
        lambda e: "/api/clusters/",
        {"GET": Allowed(200), "POST": Allowed(201, lambda e: {"name": "new-cluster"})},
    ),
    Route(
        "cluster",
        "clusters.cluster",
        lambda e: f"/api/clusters/{e.spare_cluster.pk}/",
        {
            "GET": Allowed(200),
            "PUT": Allowed(200, lambda e: {"name": "renamed-cluster"}),
            "PATCH": Allowed(200, lambda e: {"description": "Spare"}),
            "DELETE": Allowed(204),
        },
    ),
    Route(
        "hosts",
        "clusters.host",
        lambda e: "/api/hosts/",
        {"GET": Allowed(200), "POST": Allowed(201, lambda e: _host_body(e, "hv-new"))},
    ),
    Route(
        "host",
        "clusters.host",
        lambda e: f"/api/hosts/{e.spare_host.pk}/",
        {
            "GET": Allowed(200),
            "PUT": Allowed(200, lambda e: _host_body(e, "hv-renamed")),
            "PATCH": Allowed(200, lambda e: {"address": "10.9.9.10"}),
            "DELETE": Allowed(204),
        },
    ),
    Route(
        "host-refresh",
        "clusters.host",
        lambda e: f"/api/hosts/{e.source.pk}/refresh/",
        {"POST": Allowed(202, None, "clusters.operate_host")},
    ),
    Route(
        "host-maintenance",
        "clusters.host",
        lambda e: f"/api/hosts/{e.source.pk}/maintenance/",
        {"POST": Allowed(202, None, "clusters.operate_host")},
    ),
    Route(
        "host-agent-token",
        "clusters.host",
        lambda e: f"/api/hosts/{e.source.pk}/agent-token/",
        {"POST": Allowed(201, None, "clusters.change_host")},
    ),
    Route(
        "host-activate",
        "clusters.host",
        lambda e: f"/api/hosts/{e.spare_host.pk}/activate/",
        {"POST": Allowed(200, None, "clusters.operate_host")},
    ),
    Route(
        "vms",
        "clusters.vm",
        lambda e: "/api/vms/",
        {"GET": Allowed(200), "POST": Allowed(201, lambda e: _vm_body(e, "vm-new"))},
    ),
    Route(
        "vm",
        "clusters.vm",
        lambda e: f"/api/vms/{e.spare_vm.pk}/",
        {
            "GET": Allowed(200),
            "PUT": Allowed(200, lambda e: _vm_body(e, "vm-renamed")),
            "PATCH": Allowed(200, lambda e: {"vcpus": 8}),
            "DELETE": Allowed(204),
        },
    ),
    Route(
        "cluster-impact",
        "clusters.cluster",
        lambda e: f"/api/clusters/{e.cluster.pk}/impact/?migration_encrypted=true",
        {"GET": Allowed(200)},
    ),
    Route(
        "vm-migration-plan",
        "clusters.vm",
        lambda e: f"/api/vms/{e.vm.pk}/migration-plan/?destination_host={e.destination.pk}",
        {"GET": Allowed(200)},
    ),
    Route(
        "vm-migrate-bulk",
        "clusters.vm",
        lambda e: "/api/vms/migrate/",
        {"POST": Allowed(202, lambda e: {"vms": [str(e.vm.pk)]}, "migrations_app.add_migrationjob")},
    ),
    Route(
        "vm-migrate",
        "clusters.vm",
        lambda e: f"/api/vms/{e.vm.pk}/migrate/",
        {
            "POST": Allowed(
                202, lambda e: {"destination_host": str(e.destination.pk)}, "migrations_app.add_migrationjob"
            )
        },
    ),
    Route("migrations", "migrations_app.migrationjob", lambda e: "/api/migrations/", {"GET": Allowed(200)}),
    Route("migration", "migrations_app.migrationjob", lambda e: f"/api/migrations/{e.job.pk}/", {"GET": Allowed(200)}),
    Route(
        "migration-cancel",
        "migrations_app.migrationjob",
        lambda e: f"/api/migrations/{e.job.pk}/cancel/",
        {"POST": Allowed(200, None, "migrations_app.change_migrationjob")},
    ),
    Route("audit-log", "core.auditentry", lambda e: "/api/audit-log/", {"GET": Allowed(200)}),
    Route(
        "audit-entry",
        "core.auditentry",
        lambda e: f"/api/audit-log/{AuditEntry.objects.latest('pk').pk}/",
        {"GET": Allowed(200)},
    ),
    Route(
        "tokens",
        LOGGED_IN,
        lambda e: "/api/tokens/",
        {"GET": Allowed(200), "POST": Allowed(201, lambda e: {"name": "matrix"})},
    ),
    Route(
        "token",
        LOGGED_IN,
        lambda e: f"/api/tokens/{_own_token(e)}/",
        {"GET": Allowed(200), "DELETE": Allowed(204)},
    ),
]

MATRIX = list(itertools.product(ROLES, ROUTES, METHODS))


def holds(role: str, permission: str) -> bool:
    granted = ROLE_PERMISSIONS[role]
    app_label, codename = permission.split(".")
    return (
        ALL_FERRY in granted
        or permission in granted
        or ("view" in granted and codename.startswith("view_") and app_label in FERRY_APPS)
    )


def expected_status(role: str, route: Route, method: str) -> int:
    if role == "anonymous":
        return 401
    if route.model == LOGGED_IN:
        allowed_for_all = route.allowed.get(method)
        return allowed_for_all.status if allowed_for_all is not None else 405
    model_permission = f"{route.model.split('.')[0]}.{DEFAULT_ACTION[method]}_{route.model.split('.')[1]}"
    allowed = route.allowed.get(method)
    if allowed is None:
        return 405 if holds(role, model_permission) else 403
    return allowed.status if holds(role, allowed.permission or model_permission) else 403


def test_the_matrix_covers_every_role_endpoint_and_method():
    assert len(MATRIX) == len(ROLES) * len(ROUTES) * len(METHODS) == 5 * 25 * 5
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
