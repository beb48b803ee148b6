"""Reads that span apps: the dashboard's figures and an object's change history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Count, Q

from clusters.models import VM, Cluster, Host, HostStatus
from core.models import AuditEntry
from migrations_app.models import ACTIVE_STATES, JobState, MigrationJob

HISTORY_LENGTH = 10


def dashboard_summary() -> dict:
    hosts = Host.objects.aggregate(
        up=Count("pk", filter=Q(status=HostStatus.UP)), down=Count("pk", filter=~Q(status=HostStatus.UP))
    )
    jobs = MigrationJob.objects.select_related("vm", "source_host", "destination_host")
    return {
        "clusters": Cluster.objects.count(),
        "hosts_up": hosts["up"],
        "hosts_down": hosts["down"],
        "vms": VM.objects.count(),
        "migrations_running": MigrationJob.objects.filter(state__in=ACTIVE_STATES).count(),
        "active_jobs": jobs.filter(state__in=ACTIVE_STATES).order_by("-created_at")[:10],
        "recent_failures": jobs.filter(state=JobState.FAILED).order_by("-finished_at")[:5],
        "hosts_not_up": Host.objects.exclude(status=HostStatus.UP).select_related("cluster")[:10],
    }


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class HistoryEntry:
    entry: AuditEntry
    changes: list[FieldChange]


def _readable(model: type[models.Model], name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return str(value)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field.is_relation and field.related_model is not None:
        try:
            related = field.related_model._default_manager.filter(pk=value).first()
        except (ValueError, ValidationError):
            related = None
        return str(related) if related is not None else str(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict | list):
        return "changed" if value else "—"
    return str(value)


def _label(model: type[models.Model], name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def object_history(instance: models.Model, *, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """The latest audit entries of one object, newest first, with readable field changes."""
    model = type(instance)
    entries = AuditEntry.objects.filter(object_type=model._meta.model_name, object_id=str(instance.pk))[:limit]
    history = []
    for entry in entries:
        changes = []
        if entry.before is not None and entry.after is not None:
            for name in entry.after:
                changes.append(
                    FieldChange(
                        field=_label(model, name),
                        before=_readable(model, name, entry.before.get(name)),
                        after=_readable(model, name, entry.after.get(name)),
                    )
                )
        history.append(HistoryEntry(entry=entry, changes=changes))
    return history
