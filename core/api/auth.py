"""`Authorization: Token <key>` for users' API tokens, which are stored hashed (core.tokens).

A key that is unknown, revoked or expired, or whose user is inactive, is a 401 whose JSON detail
says which. Agent tokens live in their own table, so this never finds one.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from core.tokens import TokenRefused, token_authenticate


class HashedTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        try:
            token = token_authenticate(key=key)
        except TokenRefused as refused:
            raise exceptions.AuthenticationFailed(str(refused)) from None
        return token.user, token
