"""A hostile-input corpus against every URL pattern: pages, admin, the API and the oVirt-compatible API,
as an admin, a Read-only user and anonymous. Zero 5xx anywhere, and every error under /api/ in JSON.

Each test collects every failing request and reports them all at once, so that one run shows the
whole picture rather than the first crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from clusters.models import Cluster
from core.models import ApiToken, AuditEntry
from ovirt_api.services import sso_login
from tests.api.conftest import user_in_role
from tests.factories import UserFactory, api_key

# Values an attacker tries in a path segment, a query parameter or a form field.
CORPUS = [
    "\x00",
    "a\x00b",
    "\x01\x1b[2J",
    "\x7f",
    "\u202eevil",
    "zero\u200bwidth",
    "'\"<script>alert(1)</script>",
    "%00",
    "../../../etc/passwd",
    "9" * 40,
    "-1",
    "1e999",
    "NaN",
    "x" * 5000,
    "\U0001f600",
    "*",
    "[]",
]
ROLES = ["admin", "read_only", "anonymous"]
DEEP_JSON = "[" * 100_000 + "]" * 100_000
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def routes() -> Iterator[str]:
    """Every URL pattern as a route text with its parameters (Django's and regex ones) as <name>."""

    def walk(patterns, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^").rstrip("$").replace("/?", "/")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield _PARAMETER.sub(lambda m: f"<{m.group(1) or m.group(2)}>", route)

    return walk(get_resolver().url_patterns, "/")


ROUTES = sorted(set(routes()))
PARAMETRIZED = [route for route in ROUTES if "<" in route]
# The catch-all routes (a URL under /api/ or /ovirt-engine/ that matches nothing) are tried with a
# path of their own below.
PLAIN = [route for route in ROUTES if "<" not in route]


class World:
    """One object of every kind, for routes whose parameters must name something real."""

    def __init__(self, estate):
        AuditEntry.objects.get_or_create(actor="t", action="create", object_type="cluster", object_id="1")
        api_key(UserFactory(username="hostile-token-owner"))
        token = ApiToken.objects.get(user__username="hostile-token-owner")
        self.by_prefix = {
            "/api/tokens/": token.pk,
            "/tokens/": token.pk,
            "/api/cluster-levels/": "4.7",
            "/api/clusters/": estate.cluster.pk,
            "/api/hosts/": estate.source.pk,
            "/api/vms/": estate.vm.pk,
            "/api/migration-policies/": estate.policy.pk,
            "/api/migrations/": estate.job.pk,
            "/api/audit-log/": AuditEntry.objects.first().pk,
            "/ovirt-engine/api/clusters/": estate.cluster.pk,
            "/ovirt-engine/api/hosts/": estate.source.pk,
            "/ovirt-engine/api/vms/": estate.vm.pk,
            "/ovirt-engine/api/jobs/": estate.job.pk,
            "/ovirt-engine/api/options/": "MigrationPolicies",
            "/clusters/": estate.cluster.pk,
            "/hosts/": estate.source.pk,
            "/vms/": estate.vm.pk,
            "/policies/": estate.policy.pk,
            "/migrations/": estate.job.pk,
        }

    def value(self, route: str, name: str) -> str:
        if route.startswith("/admin/"):
            return self.admin_value(route, name)
        for prefix, value in self.by_prefix.items():
            if route.startswith(prefix):
                return str(value)
        return "x"

    @staticmethod
    def admin_value(route: str, name: str) -> str:
        from django.contrib.contenttypes.models import ContentType

        if name == "app_label":
            return "clusters"
        if name == "content_type_id":
            return str(ContentType.objects.get_for_model(Cluster).pk)
        parts = route.split("/")
        try:
            model = apps.get_model(parts[2], parts[3])
        except (IndexError, LookupError, ValueError):
            return str(Cluster.objects.first().pk) if name == "object_id" else "x"
        first = model.objects.first()
        return quote(str(first.pk)) if first is not None else "1"


def fill(route: str, world: World, hostile: str | None = None) -> str:
    """The route with real values, or with `hostile` (URL-encoded) for every parameter."""
    return re.sub(
        r"<(\w+)>", lambda m: quote(hostile, safe="") if hostile is not None else world.value(route, m[1]), route
    )


def client_as(role: str) -> Client:
    if role == "admin":
        user = user_in_role("read_only")
        user.is_staff = user.is_superuser = True
        user.username = "hostile-admin"
        user.save()
    else:
        user = user_in_role(role)
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
        key, _ = sso_login(user=user)
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def problem(response, method: str, url: str) -> str | None:
    """What is wrong with a response to hostile input, if anything."""
    shown = f"{method} {url[:120]!r}"
    if response.status_code >= 500:
        return f"{shown}: {response.status_code}"
    if url.startswith("/api/") and response.status_code >= 400:
        if response.get("Content-Type", "").split(";")[0] != "application/json":
            return f"{shown}: {response.status_code} as {response.get('Content-Type')}"
        try:
            json.loads(response.content)
        except ValueError:
            return f"{shown}: {response.status_code} with a body that is not JSON"
    return None


@pytest.fixture
def world(estate) -> World:
    return World(estate)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.FERRY_API_RATE_ANON = settings.FERRY_API_RATE_USER = None


def check(client: Client, requests) -> list[str]:
    problems = []
    for method, url, kwargs in requests:
        response = getattr(client, method.lower())(url, **kwargs)
        found = problem(response, method, url)
        if found:
            problems.append(found)
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_hostile_path_segments(world, role):
    def requests():
        for route in PARAMETRIZED:
            for value in CORPUS:
                yield "GET", fill(route, world, value), {}
        for prefix in ("/api/", "/ovirt-engine/", "/admin/", "/"):
            for value in CORPUS:
                yield "GET", prefix + quote(value, safe="") + "/", {}

    problems = check(client_as(role), requests())
    assert not problems, "\n".join(problems)


def query_names(route: str, url: str) -> list[str]:
    """The parameters a URL reads: a list's filters, paging and sorting (and one nobody knows);
    elsewhere only `next`."""
    if route.startswith("/admin/"):
        is_changelist = route.count("/") == 4 and "<" not in route
        return ["q", "o", "p", "all", "_changelist_filters"] if is_changelist else ["next", "_changelist_filters"]
    if route.startswith("/ovirt-engine/api/") and "<" not in route:
        return ["search", "max", "follow", "all_content", "case_sensitive", "no_such_parameter"]
    view = resolve(url.split("?")[0]).func
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    filterset = getattr(view_class, "filterset_class", None)
    if filterset is None or "<" in route:
        return ["next"]
    return [*filterset.base_filters, "q", "ordering", "limit", "offset", "page", "no_such_parameter"]


# Control characters, look-alikes, a number too big for the database, an over-long value.
QUERY_CORPUS = ["\x00", "\x01\x1b[2J", "\u202eevil", "'\"<script>", "9" * 40, "-1", "1e999", "x" * 5000, "*"]


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_hostile_query_parameters(world, role):
    def requests():
        for route in ROUTES:
            if "logout" in route:
                continue
            url = fill(route, world)
            for name in query_names(route, url):
                for value in QUERY_CORPUS:
                    yield "GET", f"{url}?{quote(name)}={quote(value, safe='')}", {}
            yield "GET", f"{url}?{quote(QUERY_CORPUS[2])}=1", {}

    problems = check(client_as(role), requests())
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_hostile_form_fields(world, role):
    """Every URL, posted a form whose fields carry each value (the names of Ferry's forms, so that the
    values reach validation where a control character does not stop them first)."""
    fields = ["name", "description", "compatibility_version", "cluster", "host", "address", "libvirt_uri"]
    fields += ["convergence", "migration_policy", "username", "password", "version", "destination_host"]

    def requests():
        for route in ROUTES:
            url = fill(route, world)
            if "logout" in url:
                continue
            for value in CORPUS:
                yield "POST", url, {"data": dict.fromkeys(fields, value)}
            yield "POST", url, {"data": {"convergence": DEEP_JSON, "name": "deep"}}

    problems = check(client_as(role), requests())
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_hostile_json_bodies(world, role):
    """Every /api/ and /ovirt-engine/ URL, sent JSON nested 100,000 deep, a NUL in a string, an
    over-long value and a body over DATA_UPLOAD_MAX_MEMORY_SIZE, with every write method."""
    too_big = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    bodies = [
        DEEP_JSON,
        json.dumps({"name": "a\x00b", "compatibility_version": "4.7\x00", "convergence": {"last": ["\x00"]}}),
        json.dumps({"name": "x" * 100_000, "description": "\u202e" * 1000}),
        json.dumps({"convergence": json.loads("[" * 500 + "]" * 500)}),
        too_big,
        "{",
        "\xff\xfe",
    ]
    targets = [route for route in ROUTES if route.startswith(("/api/", "/ovirt-engine/"))]

    def requests():
        for route in targets:
            url = fill(route, world)
            for method in ("POST", "PUT", "PATCH"):
                for body in bodies:
                    yield method, url, {"data": body, "content_type": "application/json"}

    problems = check(client_as(role), requests())
    assert not problems, "\n".join(problems)


def test_an_api_body_over_the_limit_is_413_in_json(world):
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    response = client_as("admin").post("/api/clusters/", body, content_type="application/json")

    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_json_nested_deep_is_a_400_naming_the_cause(world):
    response = client_as("admin").post("/api/clusters/", DEEP_JSON, content_type="application/json")

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    ["/api/cluster-levels/%00/", "/api/clusters/?q=a%00b", "/clusters/?q=%00", "/admin/clusters/cluster/%00/change/"],
)
def test_a_nul_is_a_400_not_a_crash(world, url):
    response = client_as("admin").get(url)

    assert response.status_code == 400
    if url.startswith("/api/"):
        assert "control character" in response.json()["detail"]


def test_a_nul_in_compatibility_version_posted_to_the_cluster_form_is_refused(world):
    client = client_as("admin")

    refused = client.post("/clusters/form-options/", {"compatibility_version": "4.7\x00"})
    page = client.get("/clusters/")

    assert refused.status_code == 400
    assert page.status_code == 200


def test_the_policy_form_refuses_deep_convergence_json_with_a_message(world):
    response = client_as("admin").post(
        "/policies/add/", {"name": "deep", "max_migrations": "2", "convergence": DEEP_JSON}
    )

    assert response.status_code == 200
    assert "nested deeper" in response.content.decode()


def test_an_unmatched_api_url_and_an_api_crash_answer_in_json(world, client):
    from django.test import RequestFactory

    from core.errors import server_error

    assert client_as("anonymous").get("/api/no/such/thing/").json() == {"detail": "Not found."}
    crashed = server_error(RequestFactory().get("/api/clusters/"))
    assert (crashed.status_code, json.loads(crashed.content)["detail"][:12]) == (500, "Server error")
