"""The API's permission matrix, declared once: every role, every endpoint (by its OpenAPI path)
and every method, and the status each gets. tests/api/test_permissions.py checks every cell with
one request each; the schema fuzzing (tests/api/test_schemathesis.py) holds its 403s to it.

Reads need a login and view_<model>; writes need the model permission (custom actions name theirs:
migrate = add_migrationjob, cancel = change_migrationjob, refresh/maintenance/activate =
operate_host). Operators hold operate_host but not change_host: they run hosts, never edit them.
Anonymous requests get 401; a logged-in user without the permission 403; a method the endpoint does
not have 405 once the method's permission is held.
/api/tokens/ needs no permission: every logged-in user manages their own tokens; /api/admin-tokens/
(everyone's) needs core.delete_apitoken, which Read-only's "view everything" does not include.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from core.api.views import ADMIN_TOKENS_PERMISSION
from core.models import ApiToken, AuditEntry
from core.roles import FERRY_APPS
from tests.api.conftest import ROLES, Estate

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


def _someone_elses_token(estate: Estate) -> str:
    """A token of another user, which only an admin sees here."""
    from django.contrib.auth import get_user_model

    from tests.factories import api_key

    owner, _ = get_user_model().objects.get_or_create(username="token-owner")
    api_key(owner, name="script")
    return str(ApiToken.objects.get(user=owner, name="script").pk)


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
    Route("api-root", LOGGED_IN, lambda e: "/api/", {"GET": Allowed(200)}),
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
    Route(
        "admin-tokens",
        "core.apitoken",
        lambda e: "/api/admin-tokens/",
        {"GET": Allowed(200, None, ADMIN_TOKENS_PERMISSION)},
    ),
    Route(
        "admin-token",
        "core.apitoken",
        lambda e: f"/api/admin-tokens/{_someone_elses_token(e)}/",
        {"GET": Allowed(200, None, ADMIN_TOKENS_PERMISSION), "DELETE": Allowed(204, None, ADMIN_TOKENS_PERMISSION)},
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


#: Each route's path in the OpenAPI document: the fuzzing (tests/api/test_schemathesis.py) finds the
#: cell of each operation it runs here, and fails on an operation that has none.
OPENAPI_PATHS = {
    "cluster-levels": "/api/cluster-levels/",
    "cluster-level": "/api/cluster-levels/{level}/",
    "migration-policies": "/api/migration-policies/",
    "migration-policy": "/api/migration-policies/{id}/",
    "clusters": "/api/clusters/",
    "cluster": "/api/clusters/{id}/",
    "hosts": "/api/hosts/",
    "host": "/api/hosts/{id}/",
    "host-refresh": "/api/hosts/{id}/refresh/",
    "host-maintenance": "/api/hosts/{id}/maintenance/",
    "host-agent-token": "/api/hosts/{id}/agent-token/",
    "host-activate": "/api/hosts/{id}/activate/",
    "vms": "/api/vms/",
    "vm": "/api/vms/{id}/",
    "cluster-impact": "/api/clusters/{id}/impact/",
    "vm-migration-plan": "/api/vms/{id}/migration-plan/",
    "vm-migrate-bulk": "/api/vms/migrate/",
    "vm-migrate": "/api/vms/{id}/migrate/",
    "migrations": "/api/migrations/",
    "migration": "/api/migrations/{id}/",
    "migration-cancel": "/api/migrations/{id}/cancel/",
    "audit-log": "/api/audit-log/",
    "audit-entry": "/api/audit-log/{id}/",
    "api-root": "/api/",
    "tokens": "/api/tokens/",
    "token": "/api/tokens/{id}/",
    "admin-tokens": "/api/admin-tokens/",
    "admin-token": "/api/admin-tokens/{id}/",
}


def route_at(path: str) -> Route | None:
    """The route whose OpenAPI path is `path`."""
    return next((route for route in ROUTES if OPENAPI_PATHS.get(route.name) == path), None)
