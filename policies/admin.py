from django.contrib import admin

from core.admin import ServiceAdmin
from policies.models import MigrationPolicy
from policies.services import POLICY_SERVICES


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
    services = POLICY_SERVICES

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False
        return super().has_delete_permission(request, obj)
