import django_filters

from clusters.models import VM, Host
from core.filtersets import StableOrderingFilter
from migrations_app.models import JobState, MigrationJob


class MigrationJobFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=JobState.choices)
    vm = django_filters.ModelChoiceFilter(queryset=VM.objects.all())
    source_host = django_filters.ModelChoiceFilter(queryset=Host.objects.all())
    destination_host = django_filters.ModelChoiceFilter(queryset=Host.objects.all())
    correlation_id = django_filters.CharFilter()
    ordering = StableOrderingFilter(
        fields=[
            "created_at",
            "started_at",
            "finished_at",
            "state",
            "progress",
            ("vm__name", "vm"),
            ("source_host__name", "source_host"),
            ("destination_host__name", "destination_host"),
        ]
    )

    class Meta:
        model = MigrationJob
        fields = ["state", "vm", "source_host", "destination_host", "correlation_id"]
