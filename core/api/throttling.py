"""Throttles: creating API tokens, per user, shared by the API and the tokens page."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class TokenCreateThrottle(ScopedRateThrottle):
    """The "token_create" rate of DEFAULT_THROTTLE_RATES (FERRY_TOKEN_CREATE_RATE), counted per user
    in the default cache. The rates are read when a request comes; DRF's own throttles read them
    once, at import."""

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)
