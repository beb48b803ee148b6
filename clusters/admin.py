from django.contrib import admin

from clusters.models import VM, Cluster, ClusterLevel, Host


@admin.register(ClusterLevel)
class ClusterLevelAdmin(admin.ModelAdmin):
    list_display = ("level", "parallel_migrations_supported")


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "compatibility_version",
        "migration_policy",
        "parallel_migrations_policy",
        "migration_encrypted",
    )
    list_filter = ("compatibility_version", "migration_policy")
    search_fields = ("name", "description")


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster", "address", "status", "capabilities_updated_at")
    list_filter = ("status", "cluster")
    search_fields = ("name", "address")


@admin.register(VM)
class VMAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "status", "memory_mib", "vcpus", "migration_policy")
    list_filter = ("status",)
    search_fields = ("name", "uuid")
