"""Every role against every endpoint of /ovirt-engine/api and every method, as tests/api/test_permissions.py
does for Ferry's own API, with the same roles and the same model permissions.

Without a valid bearer token: 401 (the SDK logs in again). With one: a method the endpoint does
not have is 405; a missing permission 403 (reads need view_<model>; a cluster update
change_cluster; migrate add_migrationjob; cancelmigration change_migrationjob; the
MigrationPolicies option, admins only, change_migrationpolicy); the root needs only a login.
Every answer is XML; refused requests change nothing and write no audit entry; writes are audited.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client

from core.models import AuditEntry
from tests.api.conftest import ROLES, Estate, estate, user_in_role  # noqa: F401  (estate: a fixture)
from tests.api.matrix import ROLE_PERMISSIONS, holds
from tests.ovirt_api.conftest import OvirtClient, login

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "DELETE")


@dataclass(frozen=True)
class Allowed:
    status: int
    permission: str | None  # None: any logged-in user
    body: Callable[[Estate], str] | None = None


@dataclass(frozen=True)
class Route:
    name: str
    url: Callable[[Estate], str]
    allowed: dict[str, Allowed] = field(default_factory=dict)


ROUTES = [
    Route("api", lambda e: "", {"GET": Allowed(200, None)}),
    Route("clusters", lambda e: "/clusters", {"GET": Allowed(200, "clusters.view_cluster")}),
    Route(
        "cluster",
        lambda e: f"/clusters/{e.cluster.pk}",
        {
            "GET": Allowed(200, "clusters.view_cluster"),
            "PUT": Allowed(
                200,
                "clusters.change_cluster",
                lambda e: "<cluster><migration><encrypted>true</encrypted></migration></cluster>",
            ),
        },
    ),
    Route("hosts", lambda e: "/hosts", {"GET": Allowed(200, "clusters.view_host")}),
    Route("host", lambda e: f"/hosts/{e.source.pk}", {"GET": Allowed(200, "clusters.view_host")}),
    Route("vms", lambda e: "/vms", {"GET": Allowed(200, "clusters.view_vm")}),
    Route("vm", lambda e: f"/vms/{e.vm.pk}", {"GET": Allowed(200, "clusters.view_vm")}),
    Route(
        "vm-migrate",
        lambda e: f"/vms/{e.vm.pk}/migrate",
        {
            "POST": Allowed(
                200,
                "migrations_app.add_migrationjob",
                lambda e: f'<action><host id="{e.destination.pk}"/></action>',
            )
        },
    ),
    Route(
        "vm-cancelmigration",
        lambda e: f"/vms/{e.job.vm_id}/cancelmigration",
        {"POST": Allowed(200, "migrations_app.change_migrationjob", lambda e: "<action/>")},
    ),
    Route("jobs", lambda e: "/jobs", {"GET": Allowed(200, "migrations_app.view_migrationjob")}),
    Route("job", lambda e: f"/jobs/{e.job.pk}", {"GET": Allowed(200, "migrations_app.view_migrationjob")}),
    Route(
        "option",
        lambda e: "/options/MigrationPolicies",
        {"GET": Allowed(200, "policies.change_migrationpolicy")},
    ),
]

MATRIX = list(itertools.product(ROLES, ROUTES, METHODS))


def expected_status(role: str, route: Route, method: str) -> int:
    if role == "anonymous":
        return 401
    allowed = route.allowed.get(method)
    if allowed is None:
        return 405
    if allowed.permission is not None and not holds(role, allowed.permission):
        return 403
    return allowed.status


def test_the_matrix_covers_every_role_endpoint_and_method():
    assert len(MATRIX) == len(ROLES) * len(ROUTES) * len(METHODS) == 5 * 12 * 4
    assert set(ROLE_PERMISSIONS) == set(ROLES)


def test_operators_may_migrate_and_cancel_but_not_change_clusters_or_read_options():
    assert expected_status("operator", ROUTES[7], "POST") == 200
    assert expected_status("operator", ROUTES[8], "POST") == 200
    assert expected_status("operator", ROUTES[2], "PUT") == 403
    assert expected_status("operator", ROUTES[11], "GET") == 403
    assert expected_status("read_only", ROUTES[7], "POST") == 403


@pytest.mark.parametrize(("role", "route", "method"), MATRIX, ids=lambda v: getattr(v, "name", v))
def test_permission(estate, role, route, method):  # noqa: F811
    user = user_in_role(role)
    client = OvirtClient(login(Client(), f"{user.get_username()}@internal") if user is not None else None)
    expected = expected_status(role, route, method)
    allowed = route.allowed.get(method)
    body = allowed.body(estate) if allowed is not None and allowed.body is not None else ""
    audit_before = AuditEntry.objects.count()

    response = client.request(method, route.url(estate), body)

    assert response.status_code == expected, response.content[:300]
    assert response["Content-Type"] == "application/xml"
    if expected >= 400:
        assert b"<fault>" in response.content
        assert AuditEntry.objects.count() == audit_before, "a refused request changed something"
    elif method != "GET":
        assert AuditEntry.objects.filter(actor=user.get_username()).count() > 0
        assert AuditEntry.objects.count() > audit_before, "a write left no audit record"
