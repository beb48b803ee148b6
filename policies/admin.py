from django.contrib import admin

from core.admin import ServiceAdmin
from policies import services
from policies.models import MigrationPolicy


@admin.register(MigrationPolicy)
class MigrationPolicyAdmin(ServiceAdmin):
    list_display = (
        "name",
        "builtin",
        "max_migrations",
        "auto_convergence",
        "migration_compression",
        "enable_guest_events",
        "zerocopy",
        "version",
    )
    list_filter = ("builtin", "zerocopy", "auto_convergence", "migration_compression")
    search_fields = ("name", "description")
    readonly_fields = ("builtin", "version")

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False
        return super().has_delete_permission(request, obj)

    def service_create(self, *, actor, data):
        return services.policy_create(actor=actor, data=data)

    def service_update(self, *, actor, obj, data, expected_version):
        return services.policy_update(actor=actor, policy=obj, data=data, expected_version=expected_version)

    def service_delete(self, *, actor, obj):
        services.policy_delete(actor=actor, policy=obj)
