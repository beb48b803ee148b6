"""Shared viewset pieces, the audit log, and users' own API tokens."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from core.api.etag import ETagMixin
from core.api.schema import ErrorSerializer
from core.api.serializers import (
    AdminApiTokenSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    AuditEntrySerializer,
    NewApiTokenSerializer,
)
from core.api.throttling import TokenCreateThrottle
from core.audit import Actor
from core.filtersets import AdminApiTokenFilterSet, ApiTokenFilterSet, AuditEntryFilterSet
from core.models import ApiToken, AuditEntry
from core.services import ModelServices
from core.tokens import all_tokens, token_create, token_expiry, token_revoke, user_tokens


class ListFilterMixin(generics.GenericAPIView):
    """FilterSets narrow lists only: a detail URL names one object, whatever its query string says.

    Any path segment reaches the view as a lookup (a malformed id is a JSON 404, not the HTML one).
    A list refuses a query parameter it does not read (400 naming it): `?search=` where the filter is
    `q` would otherwise return every row, and a script that takes the first one acts on the wrong object.
    """

    lookup_value_regex = "[^/]+"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if getattr(self, "action", None) == "list":
            self.check_query_parameters(request)

    def query_parameters(self) -> set[str]:
        """The names a list reads: its filters (ordering included) and its paginator's."""
        filterset_class = getattr(self, "filterset_class", None)
        names = set(filterset_class.base_filters) if filterset_class is not None else set()
        paginator = self.paginator
        for attribute in ("limit_query_param", "offset_query_param", "page_query_param", "page_size_query_param"):
            name = getattr(paginator, attribute, None)
            if name:
                names.add(name)
        return names

    def check_query_parameters(self, request) -> None:
        allowed = self.query_parameters()
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            message = f"Unknown query parameter; this list reads {', '.join(sorted(allowed)) or 'none'}."
            raise serializers.ValidationError({name[:100]: [message] for name in unknown})

    def filter_queryset(self, queryset):
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)


class ServicesViewSetMixin(ETagMixin):
    """Writes through the model's services (`services`), held to the version in If-Match."""

    services: ClassVar[ModelServices]

    @property
    def actor(self) -> Actor:
        return Actor.of(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = self.services.create(actor=self.actor, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self.services.update(
            actor=self.actor,
            instance=serializer.instance,
            data=serializer.validated_data,
            expected_version=self.expected_version(serializer.instance),
        )

    def perform_destroy(self, instance):
        self.services.delete(actor=self.actor, instance=instance, expected_version=self.expected_version(instance))


class FerryModelViewSet(ListFilterMixin, ServicesViewSetMixin, viewsets.ModelViewSet):
    """CRUD of one model, its writes through the model's services."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]


# The API root's links: each collection by its key, and the URL name it is routed under.
API_ROOT_LINKS = {
    "cluster-levels": "clusterlevel-list",
    "migration-policies": "migrationpolicy-list",
    "clusters": "cluster-list",
    "hosts": "host-list",
    "vms": "vm-list",
    "migrations": "migrationjob-list",
    "audit-log": "auditentry-list",
    "tokens": "apitoken-list",
    "schema": "api-schema",
    "docs": "api-docs",
}


class ApiRootView(APIView):
    """The API's entry point: a link to each collection, the OpenAPI schema and its documentation.

    JSON in a browser too: the documentation is /api/docs/ (DRF's browsable pages use inline styles,
    which the content security policy refuses)."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="api_root",
        responses=inline_serializer(name="ApiRoot", fields={key: serializers.URLField() for key in API_ROOT_LINKS}),
    )
    def get(self, request):
        return Response({key: reverse(name, request=request) for key, name in API_ROOT_LINKS.items()})


class AuditEntryViewSet(ListFilterMixin, viewsets.ReadOnlyModelViewSet):
    """Every change, newest first: who, when, which object, and the values before and after."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet


class ApiTokenViewSet(
    ListFilterMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. Create one (its key is shown only in that answer), list them (without
    keys), revoke one. Any logged-in user manages their own; nobody sees another's here.

    A token may create and revoke its owner's tokens (to rotate a script's key), but a token made
    with an expiring token expires no later than it.
    """

    queryset = ApiToken.objects.none()
    serializer_class = ApiTokenSerializer
    filterset_class = ApiTokenFilterSet
    permission_classes = [IsAuthenticated]
    throttle_scope = "token_create"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return user_tokens(user=self.request.user)

    def get_throttles(self):
        return [TokenCreateThrottle()] if self.action == "create" else []

    @extend_schema(
        request=ApiTokenCreateSerializer,
        responses={
            201: NewApiTokenSerializer,
            429: OpenApiResponse(ErrorSerializer, description="Too many tokens created lately; wait and retry."),
        },
    )
    def create(self, request):
        """Create a token for yourself; the answer holds its key, which is never shown again."""
        given = ApiTokenCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        caller = request.auth if isinstance(request.auth, ApiToken) else None
        new = token_create(
            actor=Actor.of(request.user),
            user=request.user,
            name=data["name"],
            expires=token_expiry(expires=data.get("expires"), expires_days=data.get("expires_days")),
            not_after=caller.expires if caller is not None else None,
        )
        return Response(NewApiTokenSerializer(new).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        token_revoke(actor=Actor.of(self.request.user), token=instance)


class CanRevokeAnyToken(BasePermission):
    """Every user's tokens are seen and revoked by admins only: superusers and holders of
    core.delete_apitoken (which no shipped role holds; Read-only's view permissions do not reach them)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(ADMIN_TOKENS_PERMISSION))


ADMIN_TOKENS_PERMISSION = "core.delete_apitoken"


class AdminApiTokenViewSet(
    ListFilterMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Every user's API tokens, for admins (core.delete_apitoken): list them with their owners
    (never a key), revoke one. A user manages their own at /api/tokens/."""

    queryset = ApiToken.objects.none()
    serializer_class = AdminApiTokenSerializer
    filterset_class = AdminApiTokenFilterSet
    permission_classes = [CanRevokeAnyToken]
    http_method_names = ["get", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return all_tokens()

    def perform_destroy(self, instance):
        token_revoke(actor=Actor.of(self.request.user), token=instance)
