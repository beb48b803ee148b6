"""Pages for migration policies. Built-ins are shown read-only; custom ones can be edited."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count

from clusters.models import ClusterLevel
from core.views import ObjectDeleteView, ObjectDetailView, ObjectEditView, ObjectListView
from policies import services
from policies.filtersets import MigrationPolicyFilterSet
from policies.forms import PolicyForm
from policies.models import MigrationPolicy
from policies.services import BUILTIN_READ_ONLY


class PolicyListView(ObjectListView):
    model = MigrationPolicy
    queryset = MigrationPolicy.objects.annotate(
        cluster_count=Count("clusters", distinct=True), vm_count=Count("vms", distinct=True)
    )
    filterset_class = MigrationPolicyFilterSet
    template_name = "policies/policy_list.html"
    filter_labels = {"builtin": "Built-in", "zerocopy": "Zero-copy"}


class PolicyDetailView(ObjectDetailView):
    model = MigrationPolicy
    queryset = MigrationPolicy.objects.all()
    template_name = "policies/policy_detail.html"
    context_object_name = "policy"

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
    model = MigrationPolicy
    queryset = MigrationPolicy.objects.all()
    form_class = PolicyForm
    template_name = "policies/policy_form.html"
    detail_url_name = "policies:policy_detail"
    list_url_name = "policies:policy_list"

    def get_object(self, pk):
        policy = super().get_object(pk)
        if policy is not None and policy.builtin:
            raise PermissionDenied(BUILTIN_READ_ONLY)
        return policy

    def get_initial(self):
        """?from=<policy id> starts a new policy as a copy of another (a built-in, say)."""
        try:
            source = MigrationPolicy.objects.filter(pk=self.request.GET.get("from") or None).first()
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

    def create(self, *, actor, data):
        return services.policy_create(actor=actor, data=data)

    def update(self, *, actor, obj, data, expected_version):
        return services.policy_update(actor=actor, policy=obj, data=data, expected_version=expected_version)


class PolicyDeleteView(ObjectDeleteView):
    model = MigrationPolicy
    queryset = MigrationPolicy.objects.all()
    detail_url_name = "policies:policy_detail"
    list_url_name = "policies:policy_list"

    def get_context_data(self, obj):
        if obj.builtin:
            raise PermissionDenied(BUILTIN_READ_ONLY)
        users = [f"cluster {c}" for c in obj.clusters.all()[:5]] + [f"VM {vm}" for vm in obj.vms.all()[:5]]
        return {"blockers": users}

    def delete(self, *, actor, obj, expected_version):
        services.policy_delete(actor=actor, policy=obj, expected_version=expected_version)
