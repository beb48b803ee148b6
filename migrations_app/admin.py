from django.contrib import admin

from migrations_app.models import MigrationJob


@admin.register(MigrationJob)
class MigrationJobAdmin(admin.ModelAdmin):
    list_display = ("vm", "source_host", "destination_host", "state", "progress", "created_at")
    list_filter = ("state",)
