"""API rate limits: per user and per address, read from settings on every request
(FERRY_API_RATE_ANON, FERRY_API_RATE_USER), so that a deployment, and a test, sets them without
reloading DRF's settings; and creating API tokens, per user, shared by the API and the tokens page."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class TokenCreateThrottle(ScopedRateThrottle):
    """The "token_create" rate of DEFAULT_THROTTLE_RATES (FERRY_TOKEN_CREATE_RATE), counted per user
    in the default cache. The rates are read when a request comes; DRF's own throttles read them
    once, at import."""

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)


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
