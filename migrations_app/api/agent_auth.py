"""Who calls the agent API: a host's agent, with its agent token, and nobody else.

`Authorization: Token <key>`; the key's SHA-256 finds the token, and the token its host. Used
only on /api/agent/ views, which accept no other authentication: a session, a user's API token
or any unknown key is refused there (403; no credential at all: 401).
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions

from clusters.models import Host
from migrations_app.models import AgentToken
from migrations_app.services import agent_key_hash

MAX_KEY = 200


class AgentPrincipal:
    """request.user on the agent API: the host's agent. It holds no Django permission."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, host: Host):
        self.host = host

    def get_username(self) -> str:
        return f"agent:{self.host.name}"

    def __str__(self) -> str:
        return self.get_username()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        return False


class AgentTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if len(header) != 2 or header[0].decode(errors="replace") != self.keyword or len(header[1]) > MAX_KEY:
            raise exceptions.PermissionDenied("The agent API takes only an agent token: Authorization: Token <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.PermissionDenied("Not an agent token.") from None
        token = AgentToken.objects.select_related("host").filter(key_hash=agent_key_hash(key)).first()
        if token is None:
            raise exceptions.PermissionDenied("Not an agent token (a user's API token is not accepted here).")
        return AgentPrincipal(token.host), token

    def authenticate_header(self, request) -> str:
        return self.keyword


class IsAgent(permissions.BasePermission):
    """Only a request authenticated by an agent token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, AgentToken) and isinstance(request.user, AgentPrincipal)
