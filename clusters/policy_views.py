"""Pages for migration policies (URL namespace "policies"). Built-ins are shown read-only; custom ones
can be edited. Here, above policies, because a policy's pages list the levels and clusters it is
offered at."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from clusters.models import VM, Cluster, ClusterLevel
from clusters.policy_filtersets import MigrationPolicyFilterSet
from core.counting import subquery_count
from core.views import ObjectDeleteView, ObjectDetailView, ObjectEditView, ObjectListView
from policies.forms import PolicyForm
from policies.models import MigrationPolicy
from policies.services import BUILTIN_READ_ONLY, POLICY_SERVICES


class PolicyListView(ObjectListView):
    model = MigrationPolicy
    route = "policy"
    queryset = MigrationPolicy.objects.annotate(
        cluster_count=subquery_count(Cluster.objects.all(), "migration_policy"),
        vm_count=subquery_count(VM.objects.all(), "migration_policy"),
    )
    filterset_class = MigrationPolicyFilterSet
    filter_labels = {"builtin": "Built-in", "zerocopy": "Zero-copy"}


class PolicyDetailView(ObjectDetailView):
    model = MigrationPolicy
    route = "policy"
    queryset = MigrationPolicy.objects.all()

    def get_context_data(self, obj):
        levels = [
            (level, obj.offer_refusal(level=level.level, parallel_supported=level.parallel_migrations_supported))
            for level in ClusterLevel.objects.all()
        ]
        return {
            "levels": levels,
            "clusters": obj.clusters.select_related("compatibility_version"),
            "vms": obj.vms.select_related("host__cluster"),
        }


class PolicyEditView(ObjectEditView):
    services = POLICY_SERVICES
    route = "policy"
    form_class = PolicyForm

    def get_object(self, pk):
        policy = super().get_object(pk)
        if isinstance(policy, MigrationPolicy) and policy.builtin:
            raise PermissionDenied(BUILTIN_READ_ONLY)
        return policy

    def get_initial(self):
        """?from=<policy id> starts a new policy as a copy of another (a built-in, say)."""
        source_id = self.request.GET.get("from")
        try:
            source = MigrationPolicy.objects.filter(pk=source_id).first() if source_id else None
        except ValidationError:
            source = None
        if source is None:
            return {}
        fields = ("description", "max_migrations", "auto_convergence", "migration_compression")
        initial = {name: getattr(source, name) for name in fields}
        initial |= {
            "name": f"Copy of {source.name}",
            "enable_guest_events": source.enable_guest_events,
            "zerocopy": source.zerocopy,
            "convergence": source.convergence,
        }
        return initial


class PolicyDeleteView(ObjectDeleteView):
    services = POLICY_SERVICES
    route = "policy"

    def get_context_data(self, obj):
        if obj.builtin:
            raise PermissionDenied(BUILTIN_READ_ONLY)
        return super().get_context_data(obj)
