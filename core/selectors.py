"""Reads that span apps: the dashboard's figures."""

from django.db.models import Count, Q

from clusters.models import VM, Cluster, Host, HostStatus
from migrations_app.models import JobState, MigrationJob


def dashboard_summary() -> dict:
    hosts = Host.objects.aggregate(
        up=Count("pk", filter=Q(status=HostStatus.UP)), down=Count("pk", filter=~Q(status=HostStatus.UP))
    )
    return {
        "clusters": Cluster.objects.count(),
        "hosts_up": hosts["up"],
        "hosts_down": hosts["down"],
        "vms": VM.objects.count(),
        "migrations_running": MigrationJob.objects.filter(state__in=(JobState.QUEUED, JobState.RUNNING)).count(),
        "recent_failures": MigrationJob.objects.filter(state=JobState.FAILED)
        .select_related("vm", "source_host", "destination_host")
        .order_by("-finished_at")[:5],
    }
