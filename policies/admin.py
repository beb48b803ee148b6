from django.contrib import admin

from policies.models import MigrationPolicy


@admin.register(MigrationPolicy)
class MigrationPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "builtin", "max_migrations", "auto_convergence", "migration_compression", "zerocopy")
    list_filter = ("builtin", "zerocopy")
    search_fields = ("name", "description")
