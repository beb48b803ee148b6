"""The agent API under /api/agent/ (docs/agent-api.md): thin views over migrations_app.agent_services.

Only an agent token is accepted here (AgentTokenAuthentication); the token's host is the acting
host of every call. Another host's job is 403 and changes nothing; a malformed payload is 400.
These endpoints are for ferry-agent, not for people or scripts: they are left out of the public
OpenAPI schema and documented in docs/agent-api.md instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from ferry_common import logs
from migrations_app import agent_services
from migrations_app.api.agent_auth import AgentTokenAuthentication, IsAgent


class AgentBadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Malformed report."
    default_code = "bad_request"


class AgentThrottle(SimpleRateThrottle):
    """Per host (per address before a token is accepted): an agent reports progress twice a
    second during a migration, far above a person's rate (FERRY_AGENT_API_RATE, default 1200/minute)."""

    scope = "agent"

    def get_rate(self) -> str | None:
        return settings.FERRY_AGENT_API_RATE or None

    def get_cache_key(self, request, view) -> str:
        host = getattr(request.user, "host", None)
        ident = f"host-{host.pk}" if host is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


@extend_schema(exclude=True)
class AgentView(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]
    throttle_classes = [AgentThrottle]
    parser_classes = [JSONParser]
    service: Callable[..., dict]
    with_body = True

    def answer(self, request, *args: Any) -> Response:
        host = request.user.host
        body = (request.data,) if self.with_body else ()
        job_id = args[0] if args else None
        with logs.bound(**({"job_id": str(job_id)} if job_id else {})):
            try:
                return Response(type(self).service(host, *args, *body))
            except agent_services.AgentForbidden as error:
                raise exceptions.PermissionDenied(str(error)) from None
            except agent_services.AgentBadRequest as error:
                raise AgentBadRequest(str(error)) from None


class HostInfoView(AgentView):
    service = agent_services.host_info
    with_body = False

    def get(self, request):
        return self.answer(request)


class CapabilitiesView(AgentView):
    service = agent_services.report_capabilities

    def post(self, request):
        return self.answer(request)


class InventoryView(AgentView):
    service = agent_services.report_inventory

    def post(self, request):
        return self.answer(request)


class JobView(AgentView):
    service = agent_services.job_get
    with_body = False

    def get(self, request, job_id):
        return self.answer(request, str(job_id))


class JobClaimView(AgentView):
    service = agent_services.job_claim
    with_body = False

    def post(self, request, job_id):
        return self.answer(request, str(job_id))


class JobProgressView(AgentView):
    service = agent_services.job_progress

    def post(self, request, job_id):
        return self.answer(request, str(job_id))


class JobFinishView(AgentView):
    service = agent_services.job_finish

    def post(self, request, job_id):
        return self.answer(request, str(job_id))


class JobReconcileView(AgentView):
    service = agent_services.job_reconcile

    def post(self, request, job_id):
        return self.answer(request, str(job_id))
