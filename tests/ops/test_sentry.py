"""Sentry is opt-in: without FERRY_SENTRY_DSN sentry-sdk is not even imported; with it, errors go
to Sentry from Django and Celery, without personal data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import sys, django
django.setup()
import config.celery
if "sentry_sdk" not in sys.modules:
    print("not imported")
else:
    import sentry_sdk
    options = sentry_sdk.get_client().options
    print(sorted(options["integrations"][i].identifier for i in range(len(options["integrations"]))))
    print(options["send_default_pii"], options["dsn"])
"""


def run(**env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_SENTRY")} | env
    environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=environ, capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip().splitlines()


def test_without_a_dsn_sentry_is_not_imported():
    assert run() == ["not imported"]


def test_with_a_dsn_errors_go_to_sentry_from_django_and_celery_without_personal_data():
    dsn = "http://public@127.0.0.1:9/1"  # nothing listens: nothing is sent during the test

    integrations, options = run(FERRY_SENTRY_DSN=dsn)

    assert "'django'" in integrations
    assert "'celery'" in integrations
    assert options == f"False {dsn}"
