"""Schemathesis over the whole OpenAPI schema, in-process (WSGI), on the real test database.

Every operation runs as a superuser, an Operator, a Read-only user (tokens) and anonymous, with all
of schemathesis's checks: no 5xx, responses conform to the schema (status, body, headers, content
type), schema-invalid input is rejected. Schemathesis's own "schema-valid input is accepted" check
is replaced by `refusals_explained`, which accepts a 4xx only when it can say why, from the request,
the exception the API handled and the database after the answer:

- 401 only for anonymous; 403 only where the permission matrix (tests/api/matrix.py) refuses the
  role, or for a built-in policy (read-only); a role the matrix refuses hears 401/403 and nothing else;
- 400 only with field errors, each explained: the value breaks the schema, or the error carries a
  model rule's code (core.rules.Rule, or Django's "unique"), or it says that a referenced object
  does not exist and that object really does not exist;
- 404 only for a path id that names nothing (for tokens: nothing of the caller's);
- 409 only for the documented conflicts: migrating a VM that has an active migration, cancelling a
  migration that has ended;
- 412 only for a stale If-Match.

Request bodies, query strings and paths name real objects of the test's estate some of the time
(hooks below), so creates, migrations and actions get past validation: over the run, every
operation is accepted (2xx) at least once for the superuser, and every write another role may
perform at least once for that role.

The superuser's run is the thorough one (FERRY_FUZZ_EXAMPLES, and schemathesis's coverage phase);
the other roles run fewer examples of the operations they may perform (FERRY_FUZZ_ROLE_EXAMPLES),
and two of each they may not, all in one test per role: the answer does not depend on the input.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable

import pytest
import schemathesis
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.settings import api_settings
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import positive_data_acceptance

from core.api.exceptions import Conflict, field_errors
from core.api.fields import UUID_RE
from core.rules import Rule
from core.services import StaleVersion
from tests.api.conftest import token_client, user_in_role
from tests.api.figures import record
from tests.api.matrix import OPENAPI_PATHS, expected_status, route_at

pytestmark = pytest.mark.slow


def _config(max_examples: int, *, coverage: bool, negative: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": max_examples,
                "deterministic": True,
                "mode": "all" if negative else "positive",
            },
            "phases": {"coverage": {"enabled": coverage}},
            "suppress-health-check": ["all"],
        }
    )


#: Examples per operation: the superuser's run, a role's run of what it may do, and of what it may not.
MAX_EXAMPLES = int(os.environ.get("FERRY_FUZZ_EXAMPLES", "15"))
ROLE_EXAMPLES = int(os.environ.get("FERRY_FUZZ_ROLE_EXAMPLES", "6"))
REFUSED_EXAMPLES = 2
#: Schemathesis's coverage phase (boundary values and each enum value, deterministically) for the
#: superuser's run; thorough and slow.
COVERAGE = os.environ.get("FERRY_FUZZ_COVERAGE", "1") == "1"

HANDLED: dict[str, object] = {}
STATS: dict[str, Counter] = {}
CALLER: dict[str, object] = {}
ROLES = ["admin", "operator", "read_only", "anonymous"]
#: The matrix's role for each fuzzed one: a superuser holds every permission, as its editor does.
MATRIX_ROLE = {"admin": "editor", "operator": "operator", "read_only": "read_only", "anonymous": "anonymous"}
#: Body fields and query parameters that name an object, and the resource (path segment) it is of.
REFERENCES = {
    "cluster": "clusters",
    "host": "hosts",
    "source_host": "hosts",
    "destination_host": "hosts",
    "vm": "vms",
    "migration_policy": "migration-policies",
    "compatibility_version": "cluster-levels",
}
RULE_CODES = {rule.value for rule in Rule} | {"unique"}
EXISTENCE_CODES = {"does_not_exist", "invalid_choice"}


# ------------------------------------------------------------------------------ the permission matrix
def operation_name(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def matrix_status(role: str, method: str, path: str) -> int:
    route = route_at(path)
    assert route is not None, f"{method} {path} has no cell in tests/api/matrix.py"
    return expected_status(MATRIX_ROLE[role], route, method.upper())


def permitted(role: str, method: str, path: str) -> bool:
    return 200 <= matrix_status(role, method, path) < 300


# ------------------------------------------------------------------------------ the estate's objects
#: Real ids by resource, for the request being generated (set per test by the `real_objects` fixture).
REAL: dict[str, list[str]] = {}


def real_id(resource: str, *, deleting: bool = False) -> st.SearchStrategy[str]:
    """One of the estate's objects of `resource`, read when the example is drawn (a delete draws the
    ones that may be deleted first). A caller without objects of its own names a well-formed nothing."""

    return st.integers(min_value=0, max_value=63).map(lambda index: pick_real(resource, index, deleting=deleting))


def pick_real(resource: str, index: int, *, deleting: bool = False) -> str:
    ids = REAL.get(f"{resource} to delete" if deleting else resource) or REAL.get(resource)
    return ids[index % len(ids)] if ids else str(uuid.UUID(int=index))


def _reference_strategy(name: str, value: object) -> st.SearchStrategy:
    """The generated value, or (three times in four) a real object's id in its place. Only a value
    that is already well formed is replaced, so that a negative example stays negative."""
    resource = REFERENCES.get(name)
    if resource is None:
        return st.just(value)
    well_formed = (lambda v: isinstance(v, str)) if resource == "cluster-levels" else _uuid_shaped
    if isinstance(value, list) and value and all(well_formed(item) for item in value):
        return _mostly(st.just(value), real_id(resource).map(lambda real: [real]))
    if well_formed(value):
        return _mostly(st.just(value), real_id(resource))
    return st.just(value)


def _mostly(generated: st.SearchStrategy, real: st.SearchStrategy) -> st.SearchStrategy:
    """The real object three times in four, the generated value otherwise."""
    return st.integers(min_value=0, max_value=3).flatmap(lambda i: generated if i == 0 else real)


def _uuid_shaped(value: object) -> bool:
    return isinstance(value, str) and UUID_RE.match(value) is not None


def with_real_references(container):
    if not isinstance(container, dict) or not any(name in REFERENCES for name in container):
        return st.just(container)
    return st.fixed_dictionaries({name: _reference_strategy(name, value) for name, value in container.items()})


@schemathesis.hook
def flatmap_body(context, body):
    return with_real_references(body)


@schemathesis.hook
def flatmap_query(context, query):
    return with_real_references(query)


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    """Generated ids almost never name a stored object: three drawn path parameters in four name one,
    to reach the validation and the services behind the 404."""
    resource = context.operation.path.split("/")[2]
    name = next((p.name for p in context.operation.path_parameters), None)
    if name is None:
        return strategy
    deleting = context.operation.method.upper() == "DELETE"
    return _mostly(strategy, real_id(resource, deleting=deleting).map(lambda value: {name: value}))


@pytest.fixture
def real_objects(estate, caller):
    return load_real_objects(estate, caller)


def load_real_objects(estate, caller) -> dict[str, list[str]]:
    """The estate's objects the requests may name: several per resource, so that a delete finds one
    it may delete (an empty cluster, a host without VMs) and a migration a destination that is up."""
    from clusters.models import ClusterLevel
    from core.models import ApiToken, AuditEntry
    from policies.models import MigrationPolicy
    from tests.factories import api_key

    user = caller["user"]
    if user is not None:
        # Not the key the requests carry: revoking it is harmless.
        api_key(user, name="fuzzing target")
    target_tokens = ApiToken.objects.filter(name="fuzzing target")
    REAL.clear()
    REAL.update(
        {
            "cluster-levels": list(ClusterLevel.objects.values_list("level", flat=True)),
            "clusters": [str(estate.cluster.pk), str(estate.spare_cluster.pk)],
            "hosts": [str(estate.destination.pk), str(estate.source.pk), str(estate.spare_host.pk)],
            "vms": [str(estate.vm.pk), str(estate.spare_vm.pk), str(estate.job.vm_id)],
            "migration-policies": [str(estate.policy.pk)]
            + [str(pk) for pk in MigrationPolicy.objects.filter(builtin=True).values_list("pk", flat=True)],
            "migrations": [str(estate.job.pk)],
            "audit-log": [str(AuditEntry.objects.latest("pk").pk)],
            "tokens": [str(pk) for pk in target_tokens.filter(user=user).values_list("pk", flat=True)]
            or [str(target_tokens.values_list("pk", flat=True).first() or uuid.uuid4())],
            "admin-tokens": [str(pk) for pk in target_tokens.values_list("pk", flat=True)],
            # What a delete may remove: an empty cluster, a host without VMs, a VM not migrating.
            "clusters to delete": [str(estate.spare_cluster.pk)],
            "hosts to delete": [str(estate.spare_host.pk)],
            "vms to delete": [str(estate.spare_vm.pk), str(estate.vm.pk)],
        }
    )
    return REAL


# ------------------------------------------------------------------------------ what exists
def _model(resource: str):
    from clusters.models import VM, Cluster, ClusterLevel, Host
    from core.models import AuditEntry
    from migrations_app.models import MigrationJob
    from policies.models import MigrationPolicy

    return {
        "cluster-levels": ClusterLevel,
        "clusters": Cluster,
        "hosts": Host,
        "vms": VM,
        "migration-policies": MigrationPolicy,
        "migrations": MigrationJob,
        "audit-log": AuditEntry,
    }[resource]


def exists(resource: str, value: object) -> bool:
    """Whether `value` names a stored object of `resource` (tokens: one of the caller's)."""
    from core.models import ApiToken
    from core.tokens import user_tokens

    if resource == "tokens":
        user = CALLER.get("user")
        queryset = user_tokens(user=user) if user is not None else ApiToken.objects.none()
    elif resource == "admin-tokens":
        queryset = ApiToken.objects.all()
    else:
        queryset = _model(resource).objects.all()
    key = queryset.model._meta.pk
    if key.get_internal_type() == "UUIDField":
        if not _uuid_shaped(value):
            return False
    elif key.get_internal_type() in ("AutoField", "BigAutoField"):
        if not (isinstance(value, str) and value.isdigit() and int(value) < 2**63):
            return False
    elif not isinstance(value, str):
        return False
    return queryset.filter(pk=value).exists()


def _values(value: object) -> list:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------ the oracle
def _error_codes(exc: object) -> dict[str, set[str | None]] | None:
    """Each field of a 400 and the codes of its errors, from the exception the API handled."""
    if isinstance(exc, DjangoValidationError):
        exc = DRFValidationError(field_errors(exc))
    if not isinstance(exc, DRFValidationError) or not isinstance(exc.detail, dict) or not exc.detail:
        return None
    return {name: set(_flatten(codes)) for name, codes in exc.get_codes().items()}


def _flatten(codes) -> Iterable[str | None]:
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _flatten(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _flatten(value)
    else:
        yield codes


def _breaks_schema(case, name: str) -> bool:
    """Whether the request's value for `name` (a body field, a query parameter or a header) breaks
    the operation's schema."""
    operation = case.operation
    for location, values in (("query", case.query), ("header", case.headers)):
        for parameter in getattr(operation, location if location == "query" else "headers", []):
            if parameter.name.lower() == name.lower() and values and name in values:
                return not parameter.is_valid(values[name])
    if isinstance(case.body, dict) and operation.body:
        body = next(iter(operation.body))
        validator = body.get_validator()
        for error in validator.iter_errors(case.body):
            path = list(error.instance_path)
            if (path and path[0] == name) or (not path and repr(name) in str(error)):
                return True
    return False


def _explain_field(case, name: str, codes: set[str | None]) -> str | None:
    """Why the API refused the request's `name`, or None if nothing explains it."""
    if codes <= RULE_CODES:
        return "model rule: " + ", ".join(sorted(c for c in codes if c))
    if codes <= EXISTENCE_CODES and name in REFERENCES:
        value = (case.body or {}).get(name) if isinstance(case.body, dict) else None
        if value is None and case.query:
            value = case.query.get(name)
        if value is not None and not all(exists(REFERENCES[name], item) for item in _values(value)):
            return "reference to a missing object"
        return None
    if _breaks_schema(case, name):
        return "breaks the schema"
    return None


def _path_object(case) -> tuple[str, object] | None:
    parameters = case.path_parameters or {}
    if not parameters:
        return None
    return case.operation.path.split("/")[2], next(iter(parameters.values()))


def why_refused(case, response, role: str) -> str:
    """Why the API answered a 4xx: a reason, or an AssertionError naming what does not add up."""
    status = response.status_code
    exc = HANDLED.get("exc")
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    matrix = matrix_status(role, case.method, case.operation.path)
    if status == 401:
        assert role == "anonymous", f"401 for {role}"
        return "not logged in"
    if status == 403:
        if matrix == 403:
            return "the matrix refuses the role"
        target = _path_object(case)
        if (
            isinstance(exc, DjangoPermissionDenied | DRFPermissionDenied)
            and target is not None
            and target[0] == "migration-policies"
            and _model("migration-policies").objects.filter(pk=target[1], builtin=True).exists()
        ):
            return "built-in policy"
        raise AssertionError(f"403, but the permission matrix lets {role} do this ({matrix})")
    if matrix in (401, 403) and positive:
        raise AssertionError(f"{status}, but the permission matrix says {matrix} for {role}")
    if status == 404:
        target = _path_object(case)
        assert target is not None, "404 for a path without an id"
        assert not exists(*target), f"404, but {target[0]} {target[1]} exists"
        return "no such object"
    if status == 409:
        return _explain_conflict(case, exc)
    if status == 412:
        assert isinstance(exc, StaleVersion), f"412 from {type(exc).__name__}"
        return "stale If-Match"
    if status == 400:
        codes = _error_codes(exc)
        if not positive:
            assert codes is not None or isinstance(response.json(), dict), "400 without field errors"
            return "invalid input"
        assert codes is not None, f"400 without field errors ({type(exc).__name__}): {response.text[:200]}"
        reasons = set()
        for name, field_codes in codes.items():
            reason = _explain_field(case, name, field_codes)
            assert reason is not None, (
                f"400 on {name} ({', '.join(sorted(str(c) for c in field_codes))}), which the schema allows "
                f"and no model rule explains: {response.text[:300]}"
            )
            reasons.add(reason)
            if reason.startswith("model rule"):
                STATS["rules"][f"{operation_name(case.method, case.operation.path)} {name}: {reason}"] += 1
        return "; ".join(sorted(reasons))
    assert not positive, f"{status} for schema-valid input: {response.text[:200]}"
    return f"{status} for invalid input"


def _explain_conflict(case, exc) -> str:
    from migrations_app.models import ACTIVE_STATES, MigrationJob
    from migrations_app.services import MigrationConflict

    target = _path_object(case)
    operation = operation_name(case.method, case.operation.path)
    if operation == "POST /api/vms/{id}/migrate/" and isinstance(exc, MigrationConflict):
        assert MigrationJob.objects.filter(vm_id=target[1], state__in=ACTIVE_STATES).exists(), (
            "409, but the VM has no active migration"
        )
        return "active migration"
    if operation == "POST /api/migrations/{id}/cancel/" and isinstance(exc, Conflict):
        assert not MigrationJob.objects.filter(pk=target[1], state__in=ACTIVE_STATES).exists(), (
            "409, but the migration is active"
        )
        return "migration ended"
    raise AssertionError(f"409 ({type(exc).__name__}) is not a documented conflict of {operation}")


@schemathesis.check
def refusals_explained(ctx, response, case):
    """Every 4xx has a reason (why_refused); a role the matrix refuses is never answered 2xx."""
    role = CALLER["role"]
    status = response.status_code
    if (case.method.upper(), case.operation.path) not in OPERATIONS:
        return None  # a method the path does not have (schemathesis's unsupported_method checks the 405)
    if 200 <= status < 300:
        matrix = matrix_status(role, case.method, case.operation.path)
        assert matrix not in (401, 403), f"{status}, but the permission matrix says {matrix} for {role}"
        return None
    if 400 <= status < 500:
        STATS["refusals"][why_refused(case, response, role)] += 1
    return None


# ------------------------------------------------------------------------------ the run
@pytest.fixture(autouse=True)
def in_process(monkeypatch, settings):
    """Record the exception each response came from, and keep the test's connection across requests
    (Django closes connections at the end of a request; its own test client turns that off too).
    No rate limits: fuzzing sends more requests than any rate allows (they have their own tests,
    tests/security/test_api_throttling.py, and test_tokens.py for token creation)."""
    settings.FERRY_API_RATE_ANON = settings.FERRY_API_RATE_USER = None
    monkeypatch.setattr(api_settings, "DEFAULT_THROTTLE_RATES", {"token_create": None})
    real_handler = api_settings.EXCEPTION_HANDLER

    def recording_handler(exc, context):
        HANDLED.update(exc=exc, view=context.get("view"))
        return real_handler(exc, context)

    monkeypatch.setattr(api_settings, "EXCEPTION_HANDLER", recording_handler)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def openapi_document() -> dict:
    """The document /api/schema/ serves (it needs a login, and collection runs before any user exists)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


DOCUMENT = openapi_document()
APP = get_wsgi_application()
OPERATIONS = {
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
}


def _schema(config: schemathesis.Config, include: Callable[[str, str], bool]):
    schema = schemathesis.openapi.from_dict(DOCUMENT, config=config).include(
        lambda ctx: include(ctx.operation.method, ctx.operation.path)
    )
    schema.app = APP
    return schema


def _caller(role: str) -> dict:
    from django.contrib.auth import get_user_model

    if role == "anonymous":
        return {"role": role, "user": None, "headers": {}}
    user = get_user_model().objects.get(username="admin") if role == "admin" else user_in_role(role)
    client = token_client(user)
    return {"role": role, "user": user, "headers": {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}}


def name_real_objects(case) -> None:
    """The coverage phase's cases are built when the tests are collected, before any object exists:
    three positive ones in four name real objects in their path and body instead (the others keep
    theirs, for the 404s and the missing references)."""
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE or not meta.generation.mode.is_positive:
        return
    seen = STATS["coverage_cases"]
    seen[case.operation.label] += 1
    count = seen[case.operation.label]
    if count % 4 == 0:
        return
    deleting = case.method.upper() == "DELETE"
    for name in list(case.path_parameters or {}):
        case.path_parameters[name] = pick_real(case.operation.path.split("/")[2], count, deleting=deleting)
    if isinstance(case.body, dict):
        for name, value in list(case.body.items()):
            resource = REFERENCES.get(name)
            if resource is not None and (
                _uuid_shaped(value) or (resource == "cluster-levels" and isinstance(value, str))
            ):
                case.body[name] = pick_real(resource, count)


def run_case(case, caller) -> None:
    HANDLED.clear()
    name_real_objects(case)
    CALLER.update(caller)
    role, headers = caller["role"], caller["headers"]
    # The coverage phase adds unexpected headers, a Host among them. With a cookie, requests parses
    # the Host into a URL before sending and raises on a stray bracket: a failure of the client, not
    # of the API. Host is the transport's: Django's ALLOWED_HOSTS, tested elsewhere, answers it.
    for name in [name for name in (case.headers or {}) if name.lower() == "host"]:
        del case.headers[name]
    response = case.call(headers=headers)
    operation = (role, operation_name(case.method, case.operation.path))
    STATS["cases"][role] += 1
    STATS["statuses"][response.status_code] += 1
    STATS["operations"][operation] += 1
    if 200 <= response.status_code < 300:
        STATS["accepted"][operation] += 1
    if response.status_code >= 500:
        STATS["server_errors"][f"{role} {operation[1]} -> {response.status_code}"] += 1
    try:
        case.validate_response(
            response,
            headers=headers,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[refusals_explained],
            transport_kwargs={"headers": headers},
        )
    except Exception as failure:  # schemathesis's failed checks: counted here, reported by pytest
        STATS["violations"][f"{role} {operation[1]}: {str(failure)[:300]}"] += 1
        raise


def fuzz(role: str, schema):
    """A test of every operation of `schema`, as `role`."""

    @pytest.fixture
    def caller(self, estate):
        return _caller(role)

    @schema.parametrize()
    def test(self, case, caller, real_objects, in_process, report):
        run_case(case, caller)

    return caller, test


FULL = _config(MAX_EXAMPLES, coverage=COVERAGE, negative=True)
ROLE = _config(ROLE_EXAMPLES, coverage=False, negative=True)


def _permitted(role: str) -> Callable[[str, str], bool]:
    return lambda method, path: permitted(role, method, path)


# One test per operation for the superuser, and for each role per operation it may perform; pytest
# finds the role's `caller` fixture in each class.
class TestAsSuperuser:
    caller, test_the_api = fuzz("admin", _schema(FULL, lambda method, path: True))


class TestAsOperator:
    caller, test_what_the_role_may_do = fuzz("operator", _schema(ROLE, _permitted("operator")))


class TestAsReadOnly:
    caller, test_what_the_role_may_do = fuzz("read_only", _schema(ROLE, _permitted("read_only")))


REFUSABLE = schemathesis.openapi.from_dict(DOCUMENT, config=_config(1, coverage=False, negative=False))
REFUSABLE.app = APP


@pytest.mark.parametrize("role", ["operator", "read_only", "anonymous"])
def test_what_the_role_may_not_do(role, estate, in_process, report):
    """Every operation the matrix refuses the role, a few schema-valid requests each, in one test: the
    answer (401 or 403) comes before anything reads the input."""
    caller = _caller(role)
    load_real_objects(estate, caller)
    refused = [REFUSABLE[path][method] for method, path in sorted(OPERATIONS) if not permitted(role, method, path)]

    @hypothesis_settings(
        max_examples=REFUSED_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def each_refused_operation(data):
        for operation in refused:
            run_case(data.draw(operation.as_strategy(), label=operation.label), caller)

    each_refused_operation()


@pytest.fixture(scope="module")
def report(request):
    """Records the module's figures, and checks the totals of its cases when they end (a fixture's
    teardown, so that it runs after the last case, wherever pytest puts the cases in the session):
    no response was a 5xx or broke a check, and, when every case was selected, every documented
    operation has its cell in the permission matrix and was tried in every role, every operation was
    accepted at least once for the superuser and every write another role may perform for that role
    (the fuzzing got past validation: creates, migrations and actions succeeded)."""
    STATS.clear()
    STATS.update(
        cases=Counter(),
        statuses=Counter(),
        refusals=Counter(),
        rules=Counter(),
        operations=Counter(),
        accepted=Counter(),
        server_errors=Counter(),
        violations=Counter(),
        coverage_cases=Counter(),
    )
    started = time.monotonic()
    yield
    cases = STATS["cases"]
    total = sum(cases.values())
    server_errors = sum(count for status, count in STATS["statuses"].items() if status >= 500)
    record("schemathesis_cases", total)
    record("schemathesis_cases_by_role", dict(cases))
    record("schemathesis_5xx", server_errors)
    record("schemathesis_statuses", {str(k): v for k, v in sorted(STATS["statuses"].items())})
    record("schemathesis_provable_refusals", dict(STATS["refusals"]))
    record("schemathesis_model_rule_refusals", dict(STATS["rules"].most_common()))
    record("schemathesis_seconds", round(time.monotonic() - started, 1))

    assert sum(STATS["server_errors"].values()) == 0, dict(STATS["server_errors"])
    assert sum(STATS["violations"].values()) == 0, dict(STATS["violations"])
    operations = OPERATIONS
    assert not [path for _, path in operations if path not in OPENAPI_PATHS.values()], "operations without a cell"
    fuzzed = [item for item in request.session.items if item.module is request.module]
    expected = len(operations) + sum(
        1 for role in ("operator", "read_only") for op in operations if permitted(role, *op)
    )
    if len(fuzzed) < expected + 3:
        return  # a -k selection: the coverage checks need every case
    missing = {(role, operation_name(*op)) for role in ROLES for op in operations} - set(STATS["operations"])
    assert not missing, f"operations never tried: {sorted(missing)}"
    never_accepted = sorted(
        (role, operation_name(*op))
        for role in ROLES
        for op in operations
        if permitted(role, *op)
        and (role == "admin" or op[0] != "GET")
        and not STATS["accepted"][(role, operation_name(*op))]
    )
    assert not never_accepted, f"operations the role may perform, never accepted: {never_accepted}"
