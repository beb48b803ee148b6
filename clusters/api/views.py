from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from clusters.api.serializers import (
    ClusterLevelSerializer,
    ClusterSerializer,
    HostSerializer,
    VMSerializer,
)
from clusters.filtersets import ClusterFilterSet, ClusterLevelFilterSet, HostFilterSet, VMFilterSet
from clusters.models import VM, Cluster, ClusterLevel, Host
from clusters.services import CLUSTER_SERVICES, HOST_SERVICES, LEVEL_SERVICES, VM_SERVICES
from core.api.views import FerryModelViewSet, ListFilterMixin, ServicesViewSetMixin


class ClusterLevelViewSet(
    ListFilterMixin,
    ServicesViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Compatibility levels, by their key (/api/cluster-levels/4.7/); only parallel_migrations_supported changes."""

    queryset = ClusterLevel.objects.all()
    serializer_class = ClusterLevelSerializer
    filterset_class = ClusterLevelFilterSet
    services = LEVEL_SERVICES
    lookup_field = "level"


NOT_OFFERED = extend_schema(description="A policy not offered at the cluster's compatibility version is refused (400).")


@extend_schema_view(create=NOT_OFFERED, update=NOT_OFFERED, partial_update=NOT_OFFERED)
class ClusterViewSet(FerryModelViewSet):
    """Clusters: a compatibility version, a migration policy and the cluster's migration options."""

    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy")
    serializer_class = ClusterSerializer
    filterset_class = ClusterFilterSet
    services = CLUSTER_SERVICES


class HostViewSet(FerryModelViewSet):
    """Hypervisors. Capabilities are read-only: only the host's own agent reports them (the agent API).

    Their actions (refresh, maintenance, activate, agent token) are added by migrations_app.api.views.

    Operators run hosts with refresh, maintenance and activate (clusters.operate_host); only
    admins (clusters.change_host) edit a host's name, cluster, address and libvirt/peer URIs.
    """

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    filterset_class = HostFilterSet
    services = HOST_SERVICES


class VMViewSet(FerryModelViewSet):
    """Virtual machines. Preview a migration with GET .../migration-plan/, start it with POST .../migrate/
    (actions added by migrations_app.api.views)."""

    queryset = VM.objects.select_related("host")
    serializer_class = VMSerializer
    filterset_class = VMFilterSet
    services = VM_SERVICES
