"""Schemathesis over the whole OpenAPI schema, in-process (WSGI), on the real test database.

Runs every operation as an admin, an Operator and a Read-only user (tokens) and as anonymous,
with all of schemathesis's checks (and, over the run: a Read-only user's writes and anonymous
requests are never accepted, an Operator's only for the operator actions):
no 5xx, responses conform to the schema (status, body, headers, content type), schema-invalid
input is rejected, schema-valid input is accepted. One override, and it is proven per response
rather than granted per operation: schema-valid input may be refused (400/412) when the refusal
comes from a rule OpenAPI cannot state, which `provable_refusal` identifies from the exception
the API actually handled:

- a reference to an object that does not exist (a well-formed id that names nothing);
- a value that must be unique and is taken;
- a model rule across fields or against stored state (a Django ValidationError without a
  field-format code: e.g. "custom bandwidth needs a figure", "policy not offered at 4.6",
  "stalling limits must increase", "the destination is in another cluster");
- a stale If-Match (412): the matching version is server state.

Any other 400 on valid input (a type, format or range the serializer refuses but the schema
allows) still fails the run.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
import schemathesis
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.settings import api_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from core.services import StaleVersion
from tests.api.conftest import token_client, user_in_role
from tests.api.figures import record

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FERRY_FUZZ_EXAMPLES", "40"))
CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    "suppress-health-check": ["all"],
}

HANDLED: dict[str, object] = {}
STATS: dict[str, Counter] = {}
EXISTENCE_FILTERS = (ModelChoiceFilter, ModelMultipleChoiceFilter)


def provable_refusal(status: int) -> str | None:
    """Why the API refused schema-valid input, if the reason is one OpenAPI cannot express."""
    exc, view = HANDLED.get("exc"), HANDLED.get("view")
    if status == 412 and isinstance(exc, StaleVersion):
        return "stale If-Match"
    if status != 400:
        return None
    if isinstance(exc, DjangoValidationError):
        errors = [e for es in exc.error_dict.values() for e in es] if hasattr(exc, "error_dict") else exc.error_list
        codes = {error.code for error in errors}
        return "model rule" if codes <= {None, "unique"} else None
    if isinstance(exc, DRFValidationError) and isinstance(exc.detail, dict):
        filters = getattr(getattr(view, "filterset_class", None), "base_filters", {})
        reasons = set()
        for name, codes in exc.get_codes().items():
            flat = set(_flatten(codes))
            if flat <= {"does_not_exist"}:
                reasons.add("reference to a missing object")
            elif flat <= {"unique"}:
                reasons.add("unique value taken")
            elif flat <= {"invalid_choice"} and isinstance(filters.get(name), EXISTENCE_FILTERS):
                reasons.add("filter on a missing object")
            else:
                return None
        return ", ".join(sorted(reasons)) or None
    return None


def _flatten(codes):
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _flatten(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _flatten(value)
    else:
        yield codes


@schemathesis.check
def positive_data_acceptance_beyond_openapi(ctx, response, case):
    """positive_data_acceptance, except for refusals `provable_refusal` explains."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        reason = provable_refusal(response.status_code)
        if reason is not None:
            STATS["refusals"][reason] += 1
            if reason == "model rule":
                STATS["rules"][f"{case.method} {case.operation.path}: {response.text[:160]}"] += 1
            return None
    return positive_data_acceptance(ctx, response, case)


ROLES = ["admin", "operator", "read_only", "anonymous"]
# The writes an Operator may make; a Read-only user (and anonymous) may make none.
OPERATOR_WRITES = {
    "POST /api/vms/{id}/migrate/",
    "POST /api/vms/migrate/",
    "POST /api/migrations/{id}/cancel/",
    "POST /api/hosts/{id}/activate/",
    "POST /api/hosts/{id}/maintenance/",
    "POST /api/hosts/{id}/refresh/",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
#: Every logged-in user manages their own API tokens, Read-only included.
OWN_TOKEN_WRITES = {"POST /api/tokens/", "DELETE /api/tokens/{id}/"}


@pytest.fixture(params=ROLES)
def role(request):
    return request.param


@pytest.fixture(autouse=True)
def in_process(monkeypatch, settings):
    """Record the exception each response came from, and keep the test's connection across requests
    (Django closes connections at the end of a request; its own test client turns that off too).
    No rate limits: fuzzing sends more requests than any rate allows (they have their own tests,
    tests/security/test_api_throttling.py)."""
    settings.FERRY_API_RATE_ANON = settings.FERRY_API_RATE_USER = None
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


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Records the module's figures, and checks the totals of its cases when they end (a fixture's
    teardown, so that it runs after the last case, wherever pytest puts the cases in the session):
    no response was a 5xx or broke the schema, anonymous requests were never accepted, and, when every
    case was selected, every documented operation was tried in both roles and the admin's valid
    requests were accepted for every method (the fuzzing got past validation)."""
    STATS.clear()
    STATS.update(
        cases=Counter(),
        statuses=Counter(),
        refusals=Counter(),
        rules=Counter(),
        operations=Counter(),
        accepted=Counter(),
        accepted_operations=Counter(),
        server_errors=Counter(),
        violations=Counter(),
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
    assert not [key for key in STATS["accepted"] if key[0] == "anonymous"], dict(STATS["accepted"])
    accepted_writes = {key for key in STATS["accepted_operations"] if key[1].startswith(WRITES)}
    assert not {key for key in accepted_writes if key[0] == "read_only" and key[1] not in OWN_TOKEN_WRITES}, (
        "Read-only wrote"
    )
    operator_writes = {op for role, op in accepted_writes if role == "operator"}
    assert operator_writes <= OPERATOR_WRITES | OWN_TOKEN_WRITES, "Operator over-reached"
    operations = documented_operations()
    case = "test_the_api_conforms_to_its_schema"
    selected = [item for item in request.session.items if item.name.split("[")[0] == case]
    if len(selected) < len(ROLES) * len(operations):
        return  # a -k selection: the coverage checks need every case
    missing = {(role, op) for role in ("admin", "anonymous") for op in operations} - set(STATS["operations"])
    assert not missing, f"operations never tried: {sorted(missing)}"
    for method in sorted({operation.split()[0] for operation in operations}):
        assert STATS["accepted"][("admin", method)] > 0, f"no valid {method} request was ever accepted"


def documented_operations() -> set[str]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {f"{m.upper()} {path}" for path, item in openapi_document()["paths"].items() for m in item if m in methods}


def openapi_document() -> dict:
    """The document /api/schema/ serves (it needs a login, and collection runs before any user exists)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(openapi_document(), config=schemathesis.Config.from_dict(CONFIG))
schema.app = get_wsgi_application()

# The objects of this test's estate, by the first path segment after /api/: generated ids almost
# never name a stored object, so half of the drawn path parameters name one, to reach the
# validation and the services behind the 404.
TARGETS: dict[str, object] = {}


@schema.hook
def before_generate_path_parameters(context, strategy):
    resource = context.operation.path.split("/")[2]
    name = next((p.name for p in context.operation.path_parameters), None)
    if name is None:
        return strategy
    return st.one_of(strategy, st.just(resource).map(lambda key: {name: TARGETS[key]}))


@schema.hook
def before_generate_query(context, strategy):
    if not context.operation.path.endswith("/migration-plan/"):
        return strategy
    return st.one_of(strategy, st.just("destination").map(lambda key: {"destination_host": TARGETS[key]}))


@pytest.fixture
def targets(estate, headers):
    from core.models import ApiToken, AuditEntry
    from tests.factories import api_key

    api_key(_admin(), name="fuzzing target")  # not the key the requests carry: revoking it is harmless
    TARGETS.update(
        {
            "cluster-levels": "4.8",
            "clusters": str(estate.cluster.pk),
            "hosts": str(estate.source.pk),
            "vms": str(estate.vm.pk),
            "migration-policies": str(estate.policy.pk),
            "migrations": str(estate.job.pk),
            "audit-log": str(AuditEntry.objects.latest("pk").pk),
            "tokens": str(ApiToken.objects.get(name="fuzzing target").pk),
            "destination": str(estate.destination.pk),
        }
    )
    return TARGETS


@pytest.fixture(autouse=True)
def no_token_throttle(monkeypatch):
    """Every example of an operation runs in one test: creating tokens is not throttled here (the
    throttle has its own test in test_tokens.py)."""
    monkeypatch.setattr(api_settings, "DEFAULT_THROTTLE_RATES", {"token_create": None})


@pytest.fixture
def headers(role, estate):
    if role == "anonymous":
        return {}
    client = token_client(_admin() if role == "admin" else user_in_role(role))
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


def _admin():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin")


@schema.parametrize()
def test_the_api_conforms_to_its_schema(case, headers, role, in_process, targets):
    HANDLED.clear()
    response = case.call(headers=headers)
    operation = f"{case.method.upper()} {case.operation.path}"
    STATS["cases"][role] += 1
    STATS["statuses"][response.status_code] += 1
    STATS["operations"][(role, operation)] += 1
    if 200 <= response.status_code < 300:
        STATS["accepted"][(role, case.method.upper())] += 1
        STATS["accepted_operations"][(role, operation)] += 1
    if response.status_code >= 500:
        STATS["server_errors"][f"{role} {operation} -> {response.status_code}"] += 1
    try:
        case.validate_response(
            response,
            headers=headers,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[positive_data_acceptance_beyond_openapi],
            transport_kwargs={"headers": headers},
        )
    except Exception as failure:  # schemathesis's failed checks: counted here, reported by pytest
        STATS["violations"][f"{role} {operation}: {type(failure).__name__}"] += 1
        raise
