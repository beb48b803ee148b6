"""The oVirt-compatible API under /ovirt-engine/: what unchanged ovirtsdk4 scripts call.

Every request is answered in oVirt's XML (or its JSON when the client asks with
`Accept: application/json`); every refusal is a <fault>. Reads and writes follow Ferry's own
rules through the same services: model permissions, the level's policy offer, the frozen plan,
audit entries under the user, 409 for a VM that already has an active migration.

Order of checks: a valid bearer token (else 401, so the SDK logs in again), the method (405),
the permission (403), then the request itself (400/404/409).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from clusters.models import ClusterLevel, Host
from clusters.services import cluster_update
from core.api.exceptions import field_messages
from core.audit import Actor
from core.services import StaleVersion
from migrations_app.models import ACTIVE_STATES, MigrationJob
from migrations_app.selectors import destination_search, vm_for_planning
from migrations_app.services import MigrationConflict, migration_cancel, migration_start
from ovirt_api import resources
from ovirt_api.errors import Fault
from ovirt_api.representation import (
    JSON_TYPE,
    MAX_BODY_BYTES,
    XML_TYPE,
    Tree,
    parse_body,
    to_json,
    to_xml,
    wants_json,
)
from ovirt_api.search import search_filter
from ovirt_api.services import sso_login, sso_logout, sso_token_user

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

SCOPE = "ovirt-app-api"
LIST_PARAMETERS = {"search", "max", "case_sensitive", "all_content"}
GET_PARAMETERS = {"all_content"}
INTERNAL_DOMAIN = "@internal"


def _respond(request: HttpRequest, tag: str, tree: Tree, status: int = 200) -> HttpResponse:
    if wants_json(request.headers.get("Accept", "")):
        return HttpResponse(to_json(tree), status=status, content_type=JSON_TYPE)
    return HttpResponse(to_xml(tag, tree), status=status, content_type=XML_TYPE)


def _fault(request: HttpRequest, fault: Fault, *, action: bool = False) -> HttpResponse:
    body: Tree = {"reason": fault.reason, "detail": f"[{fault.detail}]"}
    if action:
        response = _respond(request, "action", {"fault": body, "status": "failed"}, fault.status)
    else:
        response = _respond(request, "fault", body, fault.status)
    if fault.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="Ferry"'
    return response


def _messages(error: ValidationError) -> str:
    return " ".join(message for messages in field_messages(error).values() for message in messages)


def _bearer(request: HttpRequest) -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


class OvirtRequest(HttpRequest):
    """A request ovirt_view let through: `ferry_user` is the user its bearer token belongs to."""

    ferry_user: User


def ovirt_view(
    methods: dict[str, str | None], *, parameters: dict[str, set[str]] | None = None, action: bool = False
) -> Callable:
    """An API view: `methods` maps each HTTP method to the permission it needs (None: any user).
    `parameters` lists each method's accepted query parameters (others are a fault, not ignored)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        @csrf_exempt
        @never_cache
        def wrapper(request: OvirtRequest, **kwargs: Any) -> HttpResponse:
            try:
                user = sso_token_user(key=_bearer(request))
                if user is None:
                    raise Fault(
                        "Log in at /ovirt-engine/sso/oauth/token and send the token as 'Authorization: Bearer "
                        "<token>'; this request has no valid token (missing, wrong, expired or logged out).",
                        status=401,
                        reason="Unauthorized",
                    )
                if request.method not in methods:
                    raise Fault(
                        f"{request.method} is not supported here; use {', '.join(sorted(methods))}.",
                        status=405,
                        reason="Method Not Allowed",
                    )
                permission = methods[request.method]
                if permission is not None and not user.has_perm(permission):
                    raise Fault(
                        f"User {user.get_username()} lacks the permission {permission} for this request.",
                        status=403,
                        reason="Forbidden",
                    )
                version = request.headers.get("Version")
                if version not in (None, "", "4"):
                    raise Fault(f"Ferry speaks version 4 of oVirt's API, not version {version[:20]}.")
                allowed = (parameters or {}).get(request.method, set())
                unknown = sorted(set(request.GET) - allowed)
                if unknown:
                    raise Fault(
                        f'Ferry does not support the query parameter "{unknown[0][:50]}" here'
                        + (f"; it accepts {', '.join(sorted(allowed))}." if allowed else ".")
                    )
                request.ferry_user = user
                return view(request, **kwargs)
            except Fault as fault:
                response = _fault(request, fault, action=action and fault.status not in (401, 403, 405))
                if fault.status == 405:
                    response["Allow"] = ", ".join(sorted(methods))
                return response

        return wrapper

    return decorate


def _actor(request: OvirtRequest) -> Actor:
    return Actor.of(request.ferry_user)


def _flag(request: HttpRequest, name: str, default: bool) -> bool:
    value = request.GET.get(name)
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise Fault(f'The query parameter {name} is true or false, not "{value[:20]}".')
    return value.lower() == "true"


def _list(request: HttpRequest, queryset, fields, *, plural: str, singular: str, to_tree) -> HttpResponse:
    _flag(request, "all_content", False)  # every representation is already whole
    condition = search_filter(
        request.GET.get("search"), fields, case_sensitive=_flag(request, "case_sensitive", True), collection=plural
    )
    items = queryset.filter(condition)
    limit = request.GET.get("max")
    if limit not in (None, ""):
        try:
            count = int(limit)
        except ValueError:
            raise Fault(f'max is a number of {plural}, not "{limit[:20]}".') from None
        # The engine reads max as a Java int; beyond it is an error there too (and past the database's LIMIT).
        if not -1 <= count <= 2_147_483_647:
            raise Fault("max is a number of items, or -1 for all of them.")
        if count >= 0:
            items = items[:count]
    return _respond(request, plural, {singular: [to_tree(item) for item in items]})


def _body(request: HttpRequest) -> bytes:
    """The raw body, refused with a 413 fault before it is read when it is too large."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    too_large = Fault(f"The request body is larger than {MAX_BODY_BYTES} bytes.", status=413)
    if length > MAX_BODY_BYTES:
        raise too_large
    try:
        return request.body
    except RequestDataTooBig:
        raise too_large from None


def _get(queryset, pk: str, what: str):
    try:
        found = queryset.filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        found = None
    if found is None:
        raise Fault(f'No {what} has the id "{pk[:50]}".', status=404, reason="Not Found")
    return found


# SSO.


@csrf_exempt
@never_cache
def sso_token(request: HttpRequest) -> HttpResponse:
    """The password grant: a bearer token for the API, as the engine's SSO gives it (JSON)."""

    def refuse(code: str, message: str, status: int = 400) -> JsonResponse:
        return JsonResponse({"error_code": code, "error": message}, status=status)

    if request.method != "POST":
        response = refuse("invalid_request", "Use POST with a form-encoded password grant.", status=405)
        response["Allow"] = "POST"
        return response
    data = request.POST
    if data.get("grant_type") != "password":
        return refuse("unsupported_grant_type", "Ferry issues tokens for grant_type=password only.")
    if data.get("scope", SCOPE) not in (SCOPE, ""):
        return refuse("invalid_scope", f"Ferry issues tokens for the scope {SCOPE} only.")
    login = data.get("username", "")
    username = login[: -len(INTERNAL_DOMAIN)] if login.endswith(INTERNAL_DOMAIN) else login
    user = authenticate(request, username=username, password=data.get("password", "")) if username else None
    if not isinstance(user, get_user_model()):
        # One line per refusal, with the address, for whoever watches for password guessing.
        logger.warning("oVirt SSO: refused login of %r from %s", login[:150], request.META.get("REMOTE_ADDR"))
        return refuse(
            "access_denied",
            f"Cannot authenticate user '{login[:150]}': the user name or password is incorrect.",
        )
    key, token = sso_login(user=user)
    expires_ms = int(token.expires_at.timestamp() * 1000)
    return JsonResponse({"access_token": key, "token_type": "bearer", "scope": SCOPE, "exp": str(expires_ms)})


@csrf_exempt
@never_cache
def sso_logout_view(request: HttpRequest) -> HttpResponse:
    """Revoke a token (the SDK's close()). The answer is always `{}`: an unknown token is revoked already."""
    if request.method != "POST":
        response = JsonResponse({"error_code": "invalid_request", "error": "Use POST."}, status=405)
        response["Allow"] = "POST"
        return response
    sso_logout(key=request.POST.get("token", ""))
    return JsonResponse({})


# The API.


@ovirt_view({"GET": None})
def api_root(request: HttpRequest) -> HttpResponse:
    levels = list(ClusterLevel.objects.values_list("level", flat=True))
    return _respond(request, "api", resources.api_tree(levels))


@ovirt_view({"GET": "clusters.view_cluster"}, parameters={"GET": LIST_PARAMETERS})
def clusters(request: HttpRequest) -> HttpResponse:
    return _list(
        request,
        resources.cluster_queryset(),
        resources.CLUSTER_SEARCH,
        plural="clusters",
        singular="cluster",
        to_tree=resources.cluster_tree,
    )


@ovirt_view(
    {"GET": "clusters.view_cluster", "PUT": "clusters.change_cluster"},
    parameters={"GET": GET_PARAMETERS, "PUT": {"correlation_id", "async"}},
)
def cluster(request: OvirtRequest, pk: str) -> HttpResponse:
    found = _get(resources.cluster_queryset(), pk, "cluster")
    if request.method == "PUT":
        _flag(request, "async", False)  # the update is done when the answer comes, either way
        changes = resources.cluster_changes(
            parse_body(_body(request), request.content_type or "", root="cluster"), found
        )
        # A script that PUTs back what it read changes nothing: no new version, no audit entry.
        changes = {name: value for name, value in changes.items() if getattr(found, name) != value}
        try:
            if changes:
                cluster_update(actor=_actor(request), cluster=found, data=changes)
        except ValidationError as error:
            raise Fault(_messages(error)) from None
        except (StaleVersion, IntegrityError):
            raise Fault(
                "The cluster was changed by someone else at the same time; read it again and retry.", status=409
            ) from None
        found = _get(resources.cluster_queryset(), pk, "cluster")
    return _respond(request, "cluster", resources.cluster_tree(found))


@ovirt_view({"GET": "clusters.view_host"}, parameters={"GET": LIST_PARAMETERS})
def hosts(request: HttpRequest) -> HttpResponse:
    return _list(
        request,
        resources.host_queryset(),
        resources.HOST_SEARCH,
        plural="hosts",
        singular="host",
        to_tree=resources.host_tree,
    )


@ovirt_view({"GET": "clusters.view_host"}, parameters={"GET": GET_PARAMETERS})
def host(request: HttpRequest, pk: str) -> HttpResponse:
    return _respond(request, "host", resources.host_tree(_get(resources.host_queryset(), pk, "host")))


@ovirt_view({"GET": "clusters.view_vm"}, parameters={"GET": LIST_PARAMETERS})
def vms(request: HttpRequest) -> HttpResponse:
    return _list(
        request,
        resources.vm_queryset(),
        resources.VM_SEARCH,
        plural="vms",
        singular="vm",
        to_tree=resources.vm_tree,
    )


@ovirt_view({"GET": "clusters.view_vm"}, parameters={"GET": GET_PARAMETERS})
def vm(request: HttpRequest, pk: str) -> HttpResponse:
    return _respond(request, "vm", resources.vm_tree(_get(resources.vm_queryset(), pk, "VM")))


def _destination(body: Tree, vm) -> Host | None:
    """The host named in a migrate action, by id or by name; None: Ferry chooses (migration_start),
    once it is known that some host can take the VM."""
    cluster = body.get("cluster")
    if cluster is not None:
        cluster_id = cluster.get("id") if isinstance(cluster, dict) else None
        if cluster_id != str(vm.host.cluster_id):
            raise Fault(
                "Ferry migrates a VM only within its own cluster; <cluster> must be the VM's cluster "
                f"({vm.host.cluster.name}, id {vm.host.cluster_id}) or left out."
            )
    target = body.get("host")
    if target is None:
        chosen, passed = destination_search(vm)
        if chosen is None:
            why = f" ({'; '.join(passed)})" if passed else ""
            raise Fault(f"No other host of cluster {vm.host.cluster.name} is up to receive {vm.name}{why}.")
        return None
    if not isinstance(target, dict) or not (target.get("id") or target.get("name")):
        raise Fault('Name the destination as <host id="..."/> or <host><name>...</name></host>.')
    hosts = Host.objects.select_related("cluster")
    found = None
    if target.get("id"):
        try:
            found = hosts.filter(pk=uuid.UUID(str(target["id"]))).first()
        except ValueError:
            found = None
        if found is None:
            raise Fault(f'No host has the id "{str(target["id"])[:50]}".')
        if target.get("name") not in (None, found.name):
            raise Fault(f"The host with id {found.pk} is named {found.name}, not {str(target['name'])[:100]}.")
        return found
    found = hosts.filter(name=str(target["name"])).first()
    if found is None:
        raise Fault(f'No host is named "{str(target["name"])[:100]}".')
    return found


def _action_flag(body: Tree, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, str) or value.lower() not in ("true", "false"):
        raise Fault(f"<{name}> is true or false.")
    return value.lower() == "true"


def _action_body(request: HttpRequest, allowed: set[str]) -> Tree:
    body = parse_body(_body(request), request.content_type or "", root="action")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Fault(
            f"Ferry does not support <{unknown[0]}> in this action; it accepts "
            + ", ".join(f"<{name}>" for name in sorted(allowed))
            + "."
        )
    _action_flag(body, "async")  # the answer comes as soon as the job is queued, either way
    return body


def _job_link(job: MigrationJob) -> Tree:
    return resources.link("jobs", job.pk)


@ovirt_view({"POST": "migrations_app.add_migrationjob"}, parameters={"POST": {"correlation_id"}}, action=True)
def vm_migrate(request: OvirtRequest, pk: str) -> HttpResponse:
    """Start a migration: the plan is frozen on a queued job, found later by its correlation_id."""
    found = _get(resources.vm_queryset(), pk, "VM")
    body = _action_body(request, {"host", "cluster", "force", "async", "migrate_vms_in_affinity_closure"})
    if _action_flag(body, "migrate_vms_in_affinity_closure"):
        raise Fault(
            "Ferry has no affinity groups: it cannot migrate the VMs of this VM's affinity closure "
            "(migrate_vms_in_affinity_closure). Migrate each VM on its own."
        )
    # force lets the engine move a VM pinned to its host; no Ferry VM is pinned, so it changes nothing.
    _action_flag(body, "force")
    vm = vm_for_planning(found.pk)
    destination = _destination(body, vm)
    try:
        job = migration_start(
            actor=_actor(request),
            vm=vm,
            destination=destination,
            correlation_id=request.GET.get("correlation_id") or None,
        )
    except ValidationError as error:
        raise Fault(f"Cannot migrate VM {vm.name}. {_messages(error)}") from None
    except MigrationConflict as error:
        raise Fault(f"Cannot migrate VM {vm.name}. {error}", status=409) from None
    return _respond(
        request, "action", {"host": {"id": str(job.destination_host_id)}, "job": _job_link(job), "status": "complete"}
    )


@ovirt_view({"POST": "migrations_app.change_migrationjob"}, parameters={"POST": {"correlation_id"}}, action=True)
def vm_cancel_migration(request: OvirtRequest, pk: str) -> HttpResponse:
    found = _get(resources.vm_queryset(), pk, "VM")
    _action_body(request, {"async"})
    job = MigrationJob.objects.filter(vm=found, state__in=ACTIVE_STATES).first()
    if job is None:
        raise Fault(f"Cannot cancel migration of VM {found.name}: it is not being migrated.", status=409)
    try:
        job = migration_cancel(actor=_actor(request), job=job)
    except ValidationError as error:
        raise Fault(f"Cannot cancel migration of VM {found.name}. {_messages(error)}", status=409) from None
    return _respond(request, "action", {"job": _job_link(job), "status": "complete"})


@ovirt_view({"GET": "migrations_app.view_migrationjob"}, parameters={"GET": LIST_PARAMETERS})
def jobs(request: HttpRequest) -> HttpResponse:
    return _list(
        request,
        resources.job_queryset(),
        resources.JOB_SEARCH,
        plural="jobs",
        singular="job",
        to_tree=resources.job_tree,
    )


@ovirt_view({"GET": "migrations_app.view_migrationjob"}, parameters={"GET": GET_PARAMETERS})
def job(request: HttpRequest, pk: str) -> HttpResponse:
    return _respond(request, "job", resources.job_tree(_get(resources.job_queryset(), pk, "job")))


# The engine shows its configuration options to administrators only; here, those who may change policies.
@ovirt_view({"GET": "policies.change_migrationpolicy"}, parameters={"GET": {"version"}})
def option(request: HttpRequest, name: str) -> HttpResponse:
    if name != "MigrationPolicies":
        raise Fault(f'Ferry has no option "{name[:50]}"; it serves MigrationPolicies.', status=404, reason="Not Found")
    levels = ClusterLevel.objects.all()
    version = request.GET.get("version")
    if version:
        levels = levels.filter(level=version)
        if not levels:
            raise Fault(f'Ferry has no compatibility version "{version[:20]}".', status=404, reason="Not Found")
    return _respond(request, "system_option", resources.migration_policies_tree(list(levels)))


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Anything else under /ovirt-engine/: a 404 <fault>, not the site's HTML page."""
    return _fault(request, Fault("Ferry serves no such resource.", status=404, reason="Not Found"))
