"""Errors to Sentry (opt-in: FERRY_SENTRY_DSN), from the web (Django) and the worker (Celery).

Imported by the settings only when the DSN is set. No personal data is sent (send_default_pii is
off): no user names, cookies or request bodies, only the error, its stack and the request's path.
"""

from __future__ import annotations

import os


def sentry_init(dsn: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from ferry_common import __version__

    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        environment=os.environ.get("FERRY_SENTRY_ENVIRONMENT") or None,
        release=f"ferry@{__version__}",
        send_default_pii=False,
        traces_sample_rate=float(os.environ.get("FERRY_SENTRY_TRACES_SAMPLE_RATE", "0")),
    )
