from django.contrib import admin
from django.db.models import Count

from clusters.models import DEFAULT_LEVEL, VM, Cluster, ClusterLevel, Host
from clusters.services import (
    CLUSTER_SERVICES,
    HOST_SERVICES,
    LEVEL_SERVICES,
    VM_SERVICES,
    host_activate,
    host_request_refresh,
    host_set_maintenance,
)
from core.admin import ServiceAdmin, service_action
from policies.models import MigrationPolicy
from policies.selectors import policies_offered_at


@admin.register(ClusterLevel)
class ClusterLevelAdmin(ServiceAdmin):
    list_display = ("level", "parallel_migrations_supported", "cluster_count")
    list_filter = ("parallel_migrations_supported",)
    search_fields = ("level",)
    fields = ("level", "parallel_migrations_supported")
    readonly_fields = ("level",)
    services = LEVEL_SERVICES

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(cluster_total=Count("clusters"))

    @admin.display(description="Clusters", ordering="cluster_total")
    def cluster_count(self, level):
        return level.cluster_total


@admin.register(Cluster)
class ClusterAdmin(ServiceAdmin):
    list_display = (
        "name",
        "compatibility_version",
        "migration_policy",
        "parallel_migrations_policy",
        "migration_bandwidth",
        "migration_encrypted",
        "version",
    )
    list_filter = ("compatibility_version", "migration_policy", "parallel_migrations_policy", "migration_encrypted")
    list_select_related = ("compatibility_version", "migration_policy")
    search_fields = ("name", "description")
    readonly_fields = ("version",)
    services = CLUSTER_SERVICES

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "migration_policy" in form.base_fields:
            form.base_fields["migration_policy"].queryset = self.offered_policies(request, obj)
            form.base_fields[
                "migration_policy"
            ].help_text = (
                "Only the policies offered at the compatibility version; save to see the choices of another version."
            )
        return form

    def offered_policies(self, request, obj):
        """The policies offered at the level being saved (or shown), plus the cluster's own at its stored level:
        a cluster keeps its policy when its level loses parallel migrations."""
        key = request.POST.get("compatibility_version") if request.method == "POST" else None
        key = key or (obj.compatibility_version_id if obj is not None else DEFAULT_LEVEL)
        level = ClusterLevel.objects.filter(pk=key).first()
        if level is None:
            return MigrationPolicy.objects.none()
        offered = [
            policy.pk
            for policy in policies_offered_at(level=level.level, parallel_supported=level.parallel_migrations_supported)
        ]
        if obj is not None and obj.compatibility_version_id == level.level:
            offered.append(obj.migration_policy_id)
        return MigrationPolicy.objects.filter(pk__in=offered)


@admin.register(Host)
class HostAdmin(ServiceAdmin):
    list_display = ("name", "cluster", "address", "status", "zerocopy", "capabilities_updated_at", "version")
    list_filter = ("status", "cluster")
    list_select_related = ("cluster",)
    search_fields = ("name", "address", "libvirt_uri")
    readonly_fields = ("capabilities", "capabilities_updated_at", "status_reason", "version")
    actions = ("refresh_capabilities", "set_maintenance", "activate")
    services = HOST_SERVICES

    def has_operate_permission(self, request) -> bool:
        """The host actions need clusters.operate_host (Operators hold it), not change_host."""
        return request.user.has_perm("clusters.operate_host")

    @admin.display(boolean=True, description="Zero-copy")
    def zerocopy(self, host):
        return (host.capabilities or {}).get("zerocopy_migrations")

    refresh_capabilities = service_action(
        host_request_refresh,
        on="host",
        description="Refresh capabilities of the selected hosts",
        done="Capabilities refresh requested",
        permission="operate",
    )
    set_maintenance = service_action(
        host_set_maintenance,
        on="host",
        description="Put the selected hosts into maintenance (their VMs are migrated away first)",
        done="Hosts going into maintenance (in maintenance once their VMs have left)",
        permission="operate",
    )
    activate = service_action(
        host_activate,
        on="host",
        description="Activate the selected hosts",
        done="Hosts activating (up once their agents report)",
        permission="operate",
    )


@admin.register(VM)
class VMAdmin(ServiceAdmin):
    list_display = ("name", "host", "cluster", "status", "memory_mib", "vcpus", "migration_policy", "version")
    list_filter = ("status", "highly_available", "priority", "host__cluster", "migration_policy")
    list_select_related = ("host__cluster", "migration_policy")
    search_fields = ("name", "uuid", "host__name")
    readonly_fields = ("memtune_hard_limit_mib", "version")
    services = VM_SERVICES

    @admin.display(ordering="host__cluster__name")
    def cluster(self, vm):
        return vm.host.cluster

    def get_deleted_objects(self, objs, request):
        """A VM's ended jobs go with it (as through the API), though jobs cannot be deleted on their own;
        the service refuses while a job is active."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        jobs = VM._meta.get_field("migration_jobs").related_model  # migrations_app's, by the relation
        perms_needed.discard(jobs._meta.verbose_name)
        return deleted, counts, perms_needed, protected
