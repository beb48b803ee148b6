"""API rate limits, read from settings on every request (FERRY_API_RATE_ANON, FERRY_API_RATE_USER),
so that a deployment, and a test, sets them without reloading DRF's settings."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class AnonThrottle(throttling.AnonRateThrottle):
    """Requests without credentials, per client address."""

    def get_rate(self) -> str | None:
        return settings.FERRY_API_RATE_ANON

    def get_ident(self, request) -> str:
        from core.security import client_address

        return client_address(request) or super().get_ident(request)


class UserThrottle(throttling.UserRateThrottle):
    """Authenticated requests, per user (session or token alike)."""

    def get_rate(self) -> str | None:
        return settings.FERRY_API_RATE_USER

    def get_ident(self, request) -> str:
        from core.security import client_address

        return client_address(request) or super().get_ident(request)
