"""Users' API tokens: created with the key shown once, found by the key's hash, revoked; audited.

A key is 256 random bits (secrets.token_urlsafe(32)), so a plain SHA-256 is enough to store it:
there is nothing to guess from the hash, and finding a key is one indexed lookup. (A slow hash
protects passwords, which can be guessed; here it would only slow every API request down.)

A token may create and revoke its owner's tokens, so that a script can rotate its own key. It
cannot create one that outlives it: a token created with an expiring token expires no later.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.audit import Actor, audit_record
from core.models import ApiToken
from core.rules import Rule, rule_error

AUDIT_TYPE = "token"
PREFIX_LENGTH = 8
# Keys are 43 characters; anything much longer is not a key, and is not hashed.
KEY_MAX_LENGTH = 200
EXPIRES_DAYS_MAX = 3650
# last_used is written at most once a minute per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRefused(Exception):
    """A key that does not authenticate: unknown, revoked, expired, or its user inactive."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _audit_values(token: ApiToken) -> dict[str, Any]:
    """What the audit trail says of a token: never its key, nor the key's hash."""
    return {
        "name": token.name,
        "prefix": token.prefix,
        "user": token.user.get_username(),
        "expires": token.expires.isoformat() if token.expires else None,
    }


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # shown once: only its hash is stored


def token_expiry(*, expires: datetime | None = None, expires_days: int | None = None) -> datetime | None:
    """The expiry a request asks for, as a date-time or a number of days from now (not both)."""
    if expires is not None and expires_days is not None:
        raise ValidationError(
            {"expires": rule_error(Rule.EXPIRY_GIVEN_TWICE, "Give expires or expires_days, not both.")}
        )
    if expires_days is not None:
        if not 1 <= expires_days <= EXPIRES_DAYS_MAX:
            raise ValidationError({"expires_days": [f"Enter a number of days from 1 to {EXPIRES_DAYS_MAX}."]})
        return timezone.now() + timedelta(days=expires_days)
    return expires


def token_create(
    *, actor: Actor, user: Any, name: str, expires: datetime | None = None, not_after: datetime | None = None
) -> NewToken:
    """A new token for `user`. `not_after` is the expiry of the token the request came with, if
    any: the new token then expires no later, and by default at the same time."""
    now = timezone.now()
    if not_after is not None:
        if expires is None:
            expires = not_after
        elif expires > not_after:
            raise ValidationError(
                {
                    "expires": rule_error(
                        Rule.EXPIRES_AFTER_CALLER,
                        f"A token can only create tokens that expire no later than itself "
                        f"({not_after.isoformat()}); log in, or use a token that lives longer.",
                    )
                }
            )
    if expires is not None and expires <= now:
        raise ValidationError({"expires": rule_error(Rule.EXPIRES_IN_PAST, "Enter a time in the future.")})
    key = secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name, key_hash=key_digest(key), prefix=key[:PREFIX_LENGTH], created=now, expires=expires
    )
    token.full_clean(validate_constraints=False)
    if ApiToken.objects.filter(user=user, name=name).exists():
        raise ValidationError({"name": ValidationError(f"You already have a token named {name!r}.", code="unique")})
    with transaction.atomic():
        token.save(force_insert=True)
        audit_record(
            actor=actor,
            action="create",
            instance=token,
            before=None,
            after=_audit_values(token),
            object_type=AUDIT_TYPE,
        )
    return NewToken(token=token, key=key)


def token_revoke(*, actor: Actor, token: ApiToken) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="delete",
            instance=token,
            before=_audit_values(token),
            after=None,
            object_type=AUDIT_TYPE,
        )
        ApiToken.objects.filter(pk=token.pk).delete()


def token_authenticate(*, key: str) -> ApiToken:
    """The token a key belongs to, with its user; TokenRefused says why a key is not accepted."""
    if not key or len(key) > KEY_MAX_LENGTH:
        raise TokenRefused("Invalid token.")
    token = ApiToken.objects.select_related("user").filter(key_hash=key_digest(key)).first()
    if token is None:
        raise TokenRefused("Invalid token.")
    now = timezone.now()
    if token.expires is not None and token.expires <= now:
        raise TokenRefused(f"This token expired at {token.expires.isoformat()}; create a new one.")
    if not token.user.is_active:
        raise TokenRefused("This token's user is inactive.")
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used__isnull=True) | Q(last_used__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used=now)
        token.last_used = now
    return token


def user_tokens(*, user: Any) -> QuerySet[ApiToken]:
    """A user's own tokens, newest first."""
    return ApiToken.objects.filter(user=user).select_related("user")


def all_tokens() -> QuerySet[ApiToken]:
    """Every user's tokens (for admins), newest first."""
    return ApiToken.objects.select_related("user")
