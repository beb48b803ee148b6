"""Production settings pass Django's deployment checks and do what the README says at request level
(HTTPS redirect, HSTS, secure cookies, the proxy header, trusted CSRF origins), and the OpenAPI
schema validates without warnings."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "FERRY_SECURE": "true",
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "ferry.example",
}


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_check_deploy_fails_without_secure_settings():
    """The check is real: the same command refuses a deployment without HTTPS settings."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "FERRY_SECURE": "false"})
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout


@pytest.mark.slow
def test_the_openapi_schema_validates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yaml"
    result = manage("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/vms/{id}/migration-plan/:" in schema.read_text()


# Requests made in a fresh process whose settings come from the given environment, as a deployed
# Ferry's do. It logs in through the form (CSRF enforced) as the test's admin, in the test database.
REQUESTS = """
import json, django
django.setup()
from django.test import Client

def get(**extra):
    response = Client(HTTP_HOST=HOST).get("/accounts/login/", **extra)
    return {"status": response.status_code, "location": response.get("Location"),
            "hsts": response.get("Strict-Transport-Security")}

def log_in(origin):
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    https = {"proxy": {"HTTP_X_FORWARDED_PROTO": "https"}, "https": {"secure": True}, "http": {}}[LOGIN_OVER]
    client.get("/accounts/login/", **https)
    csrf = client.cookies["csrftoken"]
    response = client.post("/accounts/login/", {"username": "admin", "password": "pw-for-tests",
                           "csrfmiddlewaretoken": csrf.value}, HTTP_ORIGIN=origin, **https)
    session = response.cookies.get("sessionid")
    return {"status": response.status_code, "location": response.get("Location"),
            "csrf_cookie_secure": bool(csrf["secure"]),
            "session_cookie": session and {"secure": bool(session["secure"]), "httponly": bool(session["httponly"])}}

print(json.dumps({
    "http": get(),
    "https": get(secure=True),
    "forwarded_https": get(HTTP_X_FORWARDED_PROTO="https"),
    "login_from_public_origin": log_in("https://ferry.example"),
    "login_from_other_origin": log_in("https://elsewhere.example"),
}))
"""


DEPLOYMENT_VARIABLES = ("FERRY_SECURE", "FERRY_BEHIND_PROXY", "DJANGO_CSRF_TRUSTED_ORIGINS", "DJANGO_ALLOWED_HOSTS")


# Committed rows, so that the other process sees them (restored afterwards, as every test expects).
COMMITTED = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def admin_in_any_process(db):
    """An admin whose password another process can check (the suite's fast hasher is the suite's own)."""
    user = UserFactory(username="admin", is_staff=True, is_superuser=True)
    user.password = PBKDF2PasswordHasher().encode("pw-for-tests", "ferry-tests-salt", iterations=1000)
    user.save()
    return user


def requests_with(env: dict[str, str], host: str, *, login_over: str) -> dict:
    """login_over: "proxy" (X-Forwarded-Proto: https), "https" or "http"."""
    from tests.worker_fixtures import database_url

    inherited = {key: value for key, value in os.environ.items() if key not in DEPLOYMENT_VARIABLES}
    settings_env = {"DJANGO_SECRET_KEY": PRODUCTION["DJANGO_SECRET_KEY"], "DATABASE_URL": database_url(), **env}
    result = subprocess.run(
        [sys.executable, "-c", f"HOST = {host!r}\nLOGIN_OVER = {login_over!r}\n" + REQUESTS],
        cwd=ROOT,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "config.settings", **settings_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@COMMITTED
def test_secure_settings_redirect_to_https_send_hsts_and_ignore_the_proxy_header_by_default(admin_in_any_process):
    env = {"FERRY_SECURE": "true", "DJANGO_ALLOWED_HOSTS": "ferry.example"}
    seen = requests_with(env, "ferry.example", login_over="https")
    assert seen["http"] == {"status": 301, "location": "https://ferry.example/accounts/login/", "hsts": None}
    assert seen["https"] == {"status": 200, "location": None, "hsts": "max-age=31536000; includeSubDomains; preload"}
    # Without FERRY_BEHIND_PROXY, anyone could send X-Forwarded-Proto: it changes nothing.
    assert seen["forwarded_https"]["status"] == 301
    login = seen["login_from_public_origin"]
    assert (login["status"], login["location"]) == (302, "/")
    assert login["session_cookie"] == {"secure": True, "httponly": True} and login["csrf_cookie_secure"]
    assert seen["login_from_other_origin"]["status"] == 403


@pytest.mark.slow
@COMMITTED
def test_behind_a_proxy_with_a_trusted_origin_logins_work_over_https_with_secure_cookies(admin_in_any_process):
    # The proxy answers as https://ferry.example and passes requests on to ferry-internal.
    env = {
        "FERRY_SECURE": "true",
        "FERRY_BEHIND_PROXY": "true",
        "DJANGO_ALLOWED_HOSTS": "ferry-internal",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://ferry.example",
    }
    seen = requests_with(env, "ferry-internal", login_over="proxy")
    assert seen["forwarded_https"]["status"] == 200 and seen["forwarded_https"]["hsts"]
    assert seen["http"]["status"] == 301
    login = seen["login_from_public_origin"]
    assert (login["status"], login["location"]) == (302, "/")
    assert login["session_cookie"] == {"secure": True, "httponly": True} and login["csrf_cookie_secure"]
    assert seen["login_from_other_origin"]["status"] == 403


@pytest.mark.slow
@COMMITTED
def test_without_the_trusted_origin_the_proxys_public_origin_is_refused(admin_in_any_process):
    env = {"FERRY_SECURE": "true", "FERRY_BEHIND_PROXY": "true", "DJANGO_ALLOWED_HOSTS": "ferry-internal"}
    assert requests_with(env, "ferry-internal", login_over="proxy")["login_from_public_origin"]["status"] == 403


@pytest.mark.slow
@COMMITTED
def test_the_embedded_defaults_serve_plain_http_with_ordinary_cookies(admin_in_any_process):
    seen = requests_with({}, "127.0.0.1", login_over="http")
    assert seen["http"] == {"status": 200, "location": None, "hsts": None}
    assert seen["https"]["hsts"] is None  # no HSTS unless FERRY_SECURE
    assert seen["login_from_public_origin"]["status"] == 403  # an origin that is not this host
    assert not seen["login_from_public_origin"]["csrf_cookie_secure"]
