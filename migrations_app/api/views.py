from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.exceptions import Conflict, field_messages
from core.api.schema import ErrorSerializer
from core.api.views import ListFilterMixin
from core.audit import Actor
from migrations_app.api.serializers import MigrationJobDetailSerializer, MigrationJobSerializer
from migrations_app.filtersets import MigrationJobFilterSet
from migrations_app.selectors import job_list
from migrations_app.services import migration_cancel


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
