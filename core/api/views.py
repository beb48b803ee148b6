"""Shared viewset pieces, and the audit log."""

from __future__ import annotations

from rest_framework import viewsets

from core.api.etag import ETagMixin
from core.api.serializers import AuditEntrySerializer
from core.audit import Actor
from core.filtersets import AuditEntryFilterSet
from core.models import AuditEntry


class ListFilterMixin:
    """FilterSets narrow lists only: a detail URL names one object, whatever its query string says.

    Any path segment reaches the view as a lookup (a malformed id is a JSON 404, not the HTML one).
    """

    lookup_value_regex = "[^/]+"

    def filter_queryset(self, queryset):
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)


class FerryModelViewSet(ListFilterMixin, ETagMixin, viewsets.ModelViewSet):
    """CRUD whose writes go through services: subclasses implement perform_create/update/destroy
    with the service calls, passing `self.actor` and `self.expected_version(instance)`."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @property
    def actor(self) -> Actor:
        return Actor.of(self.request.user)


class AuditEntryViewSet(ListFilterMixin, viewsets.ReadOnlyModelViewSet):
    """Every change, newest first: who, when, which object, and the values before and after."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
