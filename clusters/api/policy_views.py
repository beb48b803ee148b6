"""The migration policies API (/api/migration-policies/). Here, above policies, because its filters
name a cluster or a compatibility level."""

from drf_spectacular.utils import extend_schema, extend_schema_view

from clusters.policy_filtersets import MigrationPolicyFilterSet
from core.api.views import FerryModelViewSet
from policies.api.serializers import MigrationPolicySerializer
from policies.models import MigrationPolicy
from policies.services import POLICY_SERVICES

READ_ONLY = extend_schema(description="Built-in policies are read-only (403).")


@extend_schema_view(
    update=READ_ONLY,
    partial_update=READ_ONLY,
    destroy=extend_schema(
        description="Built-in policies cannot be deleted (403); a policy in use cannot either (400)."
    ),
)
class MigrationPolicyViewSet(FerryModelViewSet):
    """Migration policies. ?cluster=<id> or ?compatibility_version=<level> lists those offered there."""

    queryset = MigrationPolicy.objects.all()
    serializer_class = MigrationPolicySerializer
    filterset_class = MigrationPolicyFilterSet
    services = POLICY_SERVICES
