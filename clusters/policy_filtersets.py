"""Filters of the migration policy lists: what is offered at a cluster or a compatibility level."""

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from clusters.models import Cluster, ClusterLevel
from core.filtersets import StableOrderingFilter, StrictBooleanFilter
from policies.models import MigrationPolicy


class MigrationPolicyFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    cluster = django_filters.ModelChoiceFilter(
        queryset=Cluster.objects.select_related("compatibility_version"),
        method="offered_at_cluster",
        label="Offered at cluster",
    )
    compatibility_version = django_filters.ModelChoiceFilter(
        queryset=ClusterLevel.objects.all(), method="offered_at_level", label="Offered at compatibility version"
    )
    builtin = StrictBooleanFilter()
    zerocopy = StrictBooleanFilter()
    ordering = StableOrderingFilter(fields=["name", "builtin", "max_migrations", "zerocopy"])

    class Meta:
        model = MigrationPolicy
        fields = ["builtin", "zerocopy"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))

    def _offered(self, queryset, level: ClusterLevel):
        offered = [
            policy.pk
            for policy in queryset
            if policy.is_offered_at(level=level.level, parallel_supported=level.parallel_migrations_supported)
        ]
        return queryset.filter(pk__in=offered)

    @extend_schema_field(OpenApiTypes.UUID)
    def offered_at_cluster(self, queryset, name, value):
        return self._offered(queryset, value.compatibility_version)

    @extend_schema_field({"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"})
    def offered_at_level(self, queryset, name, value):
        return self._offered(queryset, value)
