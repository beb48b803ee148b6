from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from clusters import services
from clusters.api import views as estate
from clusters.api.serializers import HostSerializer, ImpactQuerySerializer, ImpactSerializer
from core.api.exceptions import Conflict, field_messages
from core.api.schema import VALIDATION_ERROR, ErrorSerializer
from core.api.views import ListFilterMixin
from core.audit import Actor
from migrations_app.api.serializers import (
    BulkMigrateResponseSerializer,
    BulkMigrateSerializer,
    DestinationSerializer,
    MigrateSerializer,
    MigrationJobDetailSerializer,
    MigrationJobSerializer,
    PlanSerializer,
)
from migrations_app.evacuation import evacuation_progress
from migrations_app.filtersets import MigrationJobFilterSet
from migrations_app.impact import cluster_impact
from migrations_app.selectors import job_list, migration_plan, vm_for_planning
from migrations_app.services import (
    agent_token_issue,
    check_destination_in_cluster,
    migration_cancel,
    migration_start,
    migrations_start_many,
)


class MigrationJobViewSet(ListFilterMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Migration jobs, newest first. Start one with POST /api/vms/{id}/migrate/."""

    # Only ids of the VM and hosts are serialized: joining their rows (and decoding the hosts'
    # capabilities) made a page of 100 jobs three times slower (bench/).
    queryset = job_list().select_related(None).select_related("created_by")
    serializer_class = MigrationJobSerializer
    filterset_class = MigrationJobFilterSet
    action_permissions = {"cancel": ["migrations_app.change_migrationjob"]}

    def get_queryset(self):
        # A list never carries the samples (up to 720 a job): only one job's page draws them.
        queryset = super().get_queryset()
        return queryset if self.action != "list" else queryset.defer("samples")

    def get_serializer_class(self):
        return MigrationJobSerializer if self.action == "list" else MigrationJobDetailSerializer

    @extend_schema(
        request=None,
        responses={
            200: MigrationJobDetailSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The migration has already ended."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """A queued job ends at once (cancelled); a running one is asked to stop and ends when its host task does."""
        job = self.get_object()
        try:
            job = migration_cancel(actor=Actor.of(request.user), job=job)
        except ValidationError as error:
            raise Conflict(
                " ".join(message for messages in field_messages(error).values() for message in messages)
            ) from None
        return Response(self.get_serializer(job).data)


# The estate's viewsets (clusters.api.views) with the actions that plan and start migrations and
# run hosts' lifecycles: these live here, where migrations are (docs/architecture.md).


@extend_schema_view(create=estate.NOT_OFFERED, update=estate.NOT_OFFERED, partial_update=estate.NOT_OFFERED)
class ClusterViewSet(estate.ClusterViewSet):
    __doc__ = estate.ClusterViewSet.__doc__

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


class HostViewSet(estate.HostViewSet):
    __doc__ = estate.HostViewSet.__doc__

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


class VMViewSet(estate.VMViewSet):
    __doc__ = estate.VMViewSet.__doc__

    action_permissions = {
        "migrate": ["migrations_app.add_migrationjob"],
        "migrate_many": ["migrations_app.add_migrationjob"],
    }

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
        job = migration_start(actor=self.actor, vm=vm, destination=body.validated_data.get("destination_host"))
        return Response(MigrationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="vms_migrate_many",  # beside POST /api/vms/{id}/migrate/ (vms_migrate_create)
        request=BulkMigrateSerializer,
        responses={202: BulkMigrateResponseSerializer, 400: VALIDATION_ERROR},
    )
    @action(detail=False, methods=["post"], url_path="migrate")
    def migrate_many(self, request):
        """Start a migration for each VM listed, each as POST /api/vms/{id}/migrate/ would (to
        destination_host, or without it to the host Ferry chooses for each VM): 202 with one result
        per VM, in the order given; one VM's refusal does not stop the others."""
        body = BulkMigrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        outcomes = migrations_start_many(
            actor=self.actor,
            vm_ids=body.validated_data["vms"],
            destination=body.validated_data.get("destination_host"),
        )
        results = [
            {
                "vm": outcome.vm_id,
                "status": outcome.status,
                "job": MigrationJobSerializer(outcome.job).data if outcome.job is not None else None,
                "reasons": outcome.reasons,
            }
            for outcome in outcomes
        ]
        return Response({"results": results}, status=status.HTTP_202_ACCEPTED)
