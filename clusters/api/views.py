from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from clusters import services
from clusters.api.serializers import (
    ClusterLevelSerializer,
    ClusterSerializer,
    HostSerializer,
    ImpactQuerySerializer,
    ImpactSerializer,
    VMSerializer,
)
from clusters.filtersets import ClusterFilterSet, ClusterLevelFilterSet, HostFilterSet, VMFilterSet
from clusters.models import VM, Cluster, ClusterLevel, Host
from clusters.services import CLUSTER_SERVICES, HOST_SERVICES, LEVEL_SERVICES, VM_SERVICES
from core.api.schema import VALIDATION_ERROR, ErrorSerializer
from core.api.views import FerryModelViewSet, ListFilterMixin, ServicesViewSetMixin
from core.rules import Rule, rule_error
from migrations_app.api.serializers import (
    DestinationSerializer,
    MigrateSerializer,
    MigrationJobSerializer,
    PlanSerializer,
)
from migrations_app.impact import cluster_impact
from migrations_app.selectors import destination_search, migration_plan, vm_for_planning
from migrations_app.services import agent_token_issue, check_destination_in_cluster, migration_start


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

    @extend_schema(
        parameters=[ImpactQuerySerializer],
        responses={200: ImpactSerializer, 400: VALIDATION_ERROR},
        filters=False,
    )
    @action(detail=True, methods=["get"])
    def impact(self, request, pk=None):
        """What every VM's next migration would do under the proposed settings (nothing is saved),
        grouped by outcome: zero-copy or not, and the decisions that made it so."""
        cluster = self.get_object()
        query = ImpactQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        # A model rule the proposed values break raises Django's ValidationError, which the API's
        # exception handler turns into 400 {field: [messages]} as for every other write.
        return Response(cluster_impact(cluster=cluster, proposed=query.validated_data))


class RefreshAcceptedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class EvacuationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    trigger = serializers.ChoiceField(
        choices=["maintenance", "error_handling"],
        help_text="maintenance: asked for; error_handling: the host failed and its cluster's error handling moves VMs.",
    )
    outcome = serializers.ChoiceField(choices=["active", "done", "cancelled"])
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    vms = serializers.IntegerField(help_text="VMs running on the host when the evacuation started.")
    memory_mib = serializers.IntegerField(help_text="Their memory, MiB.")
    moved = serializers.IntegerField()
    running = serializers.IntegerField()
    waiting = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Jobs that failed or were cancelled.")
    vms_left = serializers.IntegerField(help_text="VMs still running on the host.")
    memory_left_mib = serializers.IntegerField()


class MaintenanceAcceptedSerializer(serializers.Serializer):
    host = HostSerializer()
    evacuation = EvacuationSerializer(allow_null=True, help_text="Null: the host never had to be emptied.")


class AgentTokenSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Shown once: only its hash is stored.")
    created = serializers.DateTimeField()


class HostViewSet(FerryModelViewSet):
    """Hypervisors. Capabilities are read-only: only the host's own agent reports them (the agent API).

    Operators run hosts with refresh, maintenance and activate (clusters.operate_host); only
    admins (clusters.change_host) edit a host's name, cluster, address and libvirt/peer URIs.
    """

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    filterset_class = HostFilterSet
    services = HOST_SERVICES
    action_permissions = {
        "refresh": ["clusters.operate_host"],
        "maintenance": ["clusters.operate_host"],
        "activate": ["clusters.operate_host"],
        "agent_token": ["clusters.change_host"],
    }

    @extend_schema(request=None, responses={202: RefreshAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Ask the host's agent to report its capabilities now (a task on the host's queue)."""
        host = self.get_object()
        services.host_request_refresh(actor=self.actor, host=host)
        return Response(
            {"detail": f"{host.name} was asked to report its capabilities."}, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(request=None, responses={202: MaintenanceAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def maintenance(self, request, pk=None):
        """Put the host into maintenance: it is preparing_for_maintenance while its VMs are migrated
        to hosts Ferry chooses, and in maintenance once none is left. A VM that cannot be moved
        keeps it preparing, with the reason in status_reason; asking again retries those VMs;
        activate cancels the evacuation. No migration goes to it, and monitoring leaves it alone."""
        from migrations_app.evacuation import evacuation_progress

        host = services.host_set_maintenance(actor=self.actor, host=self.get_object())
        return Response(
            {"host": self.get_serializer(host).data, "evacuation": evacuation_progress(host)},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={201: AgentTokenSerializer})
    @action(detail=True, methods=["post"], url_path="agent-token")
    def agent_token(self, request, pk=None):
        """Issue a new agent token for the host's ferry-agent (admins only); the previous one stops
        working. The key is in this answer only."""
        token, key = agent_token_issue(actor=self.actor, host=self.get_object())
        return Response({"key": key, "created": token.created}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: HostSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Bring the host back into service: it is activating until its agent reports, then up."""
        host = services.host_activate(actor=self.actor, host=self.get_object())
        return Response(self.get_serializer(host).data)


class VMViewSet(FerryModelViewSet):
    """Virtual machines. Preview a migration with GET .../migration-plan/, start it with POST .../migrate/."""

    queryset = VM.objects.select_related("host")
    serializer_class = VMSerializer
    filterset_class = VMFilterSet
    services = VM_SERVICES
    action_permissions = {"migrate": ["migrations_app.add_migrationjob"]}

    @extend_schema(parameters=[DestinationSerializer], responses={200: PlanSerializer})
    @action(detail=True, methods=["get"], url_path="migration-plan")
    def migration_plan(self, request, pk=None):
        """The plan for migrating this VM to destination_host: libvirt flags and params, and every decision."""
        vm = vm_for_planning(self.get_object().pk)
        query = DestinationSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        destination = query.validated_data["destination_host"]
        check_destination_in_cluster(vm, destination)
        return Response(migration_plan(vm=vm, destination=destination).to_dict())

    @extend_schema(
        request=MigrateSerializer,
        responses={
            202: MigrationJobSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The VM already has an active migration."),
        },
    )
    @action(detail=True, methods=["post"])
    def migrate(self, request, pk=None):
        """Start a migration: the plan is frozen on a new queued job, and the source host's task is sent on commit.

        Without destination_host, Ferry chooses (migrations_app.selectors.destination_search).
        400 if the VM is not up or paused, or the destination is the source, in another cluster, or not up,
        or, when Ferry chooses, no host can take it;
        409 if the VM already has an active migration.
        """
        vm = vm_for_planning(self.get_object().pk)
        body = MigrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        destination = body.validated_data.get("destination_host")
        if destination is None:
            destination, passed = destination_search(vm)
            if destination is None:
                why = "; ".join(passed) or "the cluster has no other host"
                raise ValidationError(
                    {"destination_host": rule_error(Rule.NO_DESTINATION, f"No host can take {vm.name}: {why}.")}
                )
        job = migration_start(actor=self.actor, vm=vm, destination=destination)
        return Response(MigrationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
