"""Writes of the oVirt-compatible API's own: SSO bearer tokens (login and logout), audited.

Everything else the API changes goes through the apps' services (clusters.services,
migrations_app.services), exactly as the pages and Ferry's own API do.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from ovirt_api.models import SsoToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _digest(key: str) -> str:
    # The key is 256 random bits: a plain hash is enough (nothing to guess from), and fast to look up.
    return hashlib.sha256(key.encode()).hexdigest()


def sso_login(*, user: User) -> tuple[str, SsoToken]:
    """A new bearer token for `user`: the key (shown once) and its stored row. Expired tokens go."""
    key = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        SsoToken.objects.filter(expires_at__lte=now).delete()
        token = SsoToken.objects.create(
            key_hash=_digest(key),
            user=user,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.FERRY_OVIRT_TOKEN_TTL_S),
        )
        audit_record(actor=Actor.of(user), action="login", instance=token, before=None, after=None)
    return key, token


def sso_token_user(*, key: str) -> User | None:
    """The active user a bearer key belongs to, or None when it is unknown, expired or revoked."""
    if not key or len(key) > 200:
        return None
    token = SsoToken.objects.select_related("user").filter(key_hash=_digest(key), expires_at__gt=timezone.now()).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def sso_logout(*, key: str) -> bool:
    """Revoke a bearer key. Unknown and expired keys are already unusable: nothing to do."""
    if not key or len(key) > 200:
        return False
    with transaction.atomic():
        token = SsoToken.objects.select_for_update().select_related("user").filter(key_hash=_digest(key)).first()
        if token is None:
            return False
        audit_record(actor=Actor.of(token.user), action="logout", instance=token, before=None, after=None)
        token.delete()
    return True
