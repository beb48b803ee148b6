"""One FilterSet per resource, shared by the API and the list pages."""

import django_filters
from django.db.models import Q

from clusters.models import (
    VM,
    Bandwidth,
    Cluster,
    ClusterLevel,
    Host,
    HostStatus,
    ParallelPolicy,
    VMStatus,
)
from core.choices import TriState
from core.filtersets import UUID, StableOrderingFilter, StrictBooleanFilter, StrictUUIDFilter
from policies.models import MigrationPolicy

# Up to this many hosts matched by a VM search are passed on as ids.
SEARCH_HOSTS_INLINE = 500


class ClusterLevelFilterSet(django_filters.FilterSet):
    ordering = StableOrderingFilter(fields=["level", "parallel_migrations_supported"])

    class Meta:
        model = ClusterLevel
        fields: list[str] = []


class ClusterFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or description.")
    compatibility_version = django_filters.ModelMultipleChoiceFilter(queryset=ClusterLevel.objects.all())
    migration_policy = django_filters.ModelMultipleChoiceFilter(queryset=MigrationPolicy.objects.all())
    parallel_migrations_policy = django_filters.MultipleChoiceFilter(choices=ParallelPolicy.choices)
    migration_encrypted = django_filters.MultipleChoiceFilter(choices=TriState.choices)
    migration_bandwidth = django_filters.MultipleChoiceFilter(choices=Bandwidth.choices)
    ordering = StableOrderingFilter(
        fields=[
            "name",
            ("compatibility_version__level", "compatibility_version"),
            ("migration_policy__name", "migration_policy"),
            "migration_bandwidth",
            "parallel_migrations_policy",
            "migration_encrypted",
        ]
    )

    class Meta:
        model = Cluster
        fields = ["name"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class HostFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or address.")
    cluster = django_filters.ModelMultipleChoiceFilter(queryset=Cluster.objects.all())
    status = django_filters.MultipleChoiceFilter(choices=HostStatus.choices)
    zerocopy = StrictBooleanFilter(method="filter_zerocopy", label="Supports zero-copy")
    ordering = StableOrderingFilter(
        fields=["name", ("cluster__name", "cluster"), "address", "status", "capabilities_updated_at"]
    )

    class Meta:
        model = Host
        fields = ["name", "address"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))

    def filter_zerocopy(self, queryset, name, value):
        supported = Q(capabilities__zerocopy_migrations=True)
        return queryset.filter(supported) if value else queryset.exclude(supported)


class VMFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Search", help_text="Part of the name or of its host's name, or the whole domain UUID."
    )
    host = django_filters.ModelMultipleChoiceFilter(queryset=Host.objects.all())
    cluster = django_filters.ModelMultipleChoiceFilter(field_name="host__cluster", queryset=Cluster.objects.all())
    status = django_filters.MultipleChoiceFilter(choices=VMStatus.choices)
    migration_policy = django_filters.ModelMultipleChoiceFilter(queryset=MigrationPolicy.objects.all())
    uuid = StrictUUIDFilter()
    highly_available = StrictBooleanFilter(label="Highly available")
    ordering = StableOrderingFilter(
        fields=[
            "name",
            "uuid",
            "status",
            ("host__name", "host"),
            ("host__cluster__name", "cluster"),
            "memory_mib",
            "vcpus",
            ("migration_policy__name", "migration_policy"),
        ],
        ranked={"migration_policy__name": ("migration_policy", "name")},
    )

    class Meta:
        model = VM
        fields = ["name", "uuid"]

    def search(self, queryset, name, value):
        value = value.strip()
        if UUID.fullmatch(value):
            # A domain UUID is unique and indexed: an exact match, not a scan for a substring.
            return queryset.filter(uuid=value)
        # By its own name, or its host's. The matching hosts are read first, so that both conditions
        # are on the VM table with plain values: PostgreSQL then combines two index scans (the name's
        # trigram index, the host's) instead of testing every VM against a subquery. A search that
        # matches very many hosts keeps the subquery rather than sending thousands of ids.
        hosts = Host.objects.filter(name__icontains=value).values_list("pk", flat=True)
        host_ids = list(hosts[: SEARCH_HOSTS_INLINE + 1])
        in_hosts = Q(host__in=host_ids) if len(host_ids) <= SEARCH_HOSTS_INLINE else Q(host__in=hosts)
        return queryset.filter(Q(name__icontains=value) | in_hosts)
