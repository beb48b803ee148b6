"""Production settings pass Django's deployment checks, and the OpenAPI schema validates without warnings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "FERRY_SECURE": "true",
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "ferry.example",
}


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The browser tests allow async-unsafe calls in this process; a deployment never does.
    inherited = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
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
