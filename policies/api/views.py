from drf_spectacular.utils import extend_schema, extend_schema_view

from core.api.views import FerryModelViewSet
from policies import services
from policies.api.serializers import MigrationPolicySerializer
from policies.filtersets import MigrationPolicyFilterSet
from policies.models import MigrationPolicy


@extend_schema_view(
    update=extend_schema(description="Built-in policies are read-only (403)."),
    partial_update=extend_schema(description="Built-in policies are read-only (403)."),
    destroy=extend_schema(
        description="Built-in policies cannot be deleted (403); a policy in use cannot either (400)."
    ),
)
class MigrationPolicyViewSet(FerryModelViewSet):
    """Migration policies. ?cluster=<id> or ?compatibility_version=<level> lists those offered there."""

    queryset = MigrationPolicy.objects.all()
    serializer_class = MigrationPolicySerializer
    filterset_class = MigrationPolicyFilterSet

    def perform_create(self, serializer):
        serializer.instance = services.policy_create(actor=self.actor, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.policy_update(
            actor=self.actor,
            policy=serializer.instance,
            data=serializer.validated_data,
            expected_version=self.expected_version(serializer.instance),
        )

    def perform_destroy(self, instance):
        services.policy_delete(actor=self.actor, policy=instance, expected_version=self.expected_version(instance))
