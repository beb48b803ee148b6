from django.contrib import admin

from core.admin import ReadOnlyAdmin, ServiceAdmin, service_action
from migrations_app.models import AgentToken, Evacuation, MigrationJob
from migrations_app.services import migration_cancel


@admin.register(MigrationJob)
class MigrationJobAdmin(ReadOnlyAdmin, ServiceAdmin):
    """Jobs are made by POST /api/vms/{id}/migrate/ and the pages, and moved on by their host task;
    here they are read-only, except that selected ones can be cancelled."""

    list_display = ("vm", "source_host", "destination_host", "state", "progress", "created_by", "created_at")
    list_filter = ("state", "source_host", "destination_host")
    list_select_related = ("vm", "source_host", "destination_host", "created_by")
    search_fields = ("vm__name", "id", "correlation_id")
    date_hierarchy = "created_at"
    actions = ("cancel",)

    def has_cancel_permission(self, request):
        return request.user.has_perm("migrations_app.change_migrationjob")

    cancel = service_action(
        migration_cancel,
        on="job",
        description="Cancel the selected migrations",
        done="Migrations cancelled",
        permission="cancel",
    )


@admin.register(AgentToken)
class AgentTokenAdmin(ReadOnlyAdmin):
    """Which host has an agent token, since when and from whom; never the key (not stored) nor its
    hash. Issued by `manage.py agent_token`, the host's page or POST /api/hosts/{id}/agent-token/."""

    list_display = ("host", "created", "created_by")
    list_filter = ("created",)
    list_select_related = ("host", "created_by")
    search_fields = ("host__name",)
    fields = ("host", "created", "created_by")


@admin.register(Evacuation)
class EvacuationAdmin(ReadOnlyAdmin):
    """Hosts emptied for maintenance (migrations_app.evacuation): started by a host's maintenance
    action, ended when the host reaches maintenance or is activated."""

    list_display = ("host", "outcome", "vm_count", "memory_mib", "started_by", "started_at", "ended_at")
    list_filter = ("outcome", "started_at")
    list_select_related = ("host", "started_by")
    search_fields = ("host__name",)
