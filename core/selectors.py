"""An object's change history, from the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from core.models import AuditEntry

HISTORY_LENGTH = 10


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class HistoryEntry:
    entry: AuditEntry
    changes: list[FieldChange]


RelatedNames = dict[tuple[type[models.Model], str], str]


def related_names(entries: list[AuditEntry]) -> RelatedNames:
    """The names of the objects that the entries' related fields point at, one query per related
    model: a page of entries must not look each one up on its own."""
    wanted: dict[type[models.Model], set[str]] = {}
    for entry in entries:
        model = audit_model(entry.object_type)
        if model is None or entry.before is None or entry.after is None:
            continue
        for name in entry.after:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if field.is_relation and field.related_model is not None:
                for value in (entry.before.get(name), entry.after.get(name)):
                    if value not in (None, ""):
                        wanted.setdefault(field.related_model, set()).add(str(value))
    names: RelatedNames = {}
    for related_model, pks in wanted.items():
        valid = []
        for pk in pks:
            try:
                related_model._meta.pk.to_python(pk)
            except ValidationError:
                continue
            valid.append(pk)
        for obj in related_model._default_manager.filter(pk__in=valid):
            names[(related_model, str(obj.pk))] = str(obj)
    return names


def _readable(model: type[models.Model], name: str, value: Any, related: RelatedNames | None = None) -> str:
    if value is None or value == "":
        return "—"
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return str(value)
    if not isinstance(field, models.Field):  # a reverse relation: the audit stores none
        return str(value)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field.is_relation and field.related_model is not None and related is not None:
        return related.get((field.related_model, str(value)), str(value))
    if field.is_relation and field.related_model is not None:
        try:
            found = field.related_model._default_manager.filter(pk=value).first()
        except (ValueError, ValidationError):
            found = None
        return str(found) if found is not None else str(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict | list):
        return "changed" if value else "—"
    return str(value)


def _label(model: type[models.Model], name: str) -> str:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    return str(field.verbose_name) if isinstance(field, models.Field) else name


def object_history(instance: models.Model, *, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """The latest audit entries of one object, newest first, with readable field changes."""
    model = type(instance)
    entries = AuditEntry.objects.filter(object_type=model._meta.model_name, object_id=str(instance.pk))[:limit]
    return [HistoryEntry(entry=entry, changes=entry_changes(entry, model)) for entry in entries]


def entry_changes(
    entry: AuditEntry, model: type[models.Model] | None, related: RelatedNames | None = None
) -> list[FieldChange]:
    """An update's changes, field by field; a dict field (a host's capabilities) key by key."""
    if entry.before is None or entry.after is None:
        return []
    changes = []
    for name in entry.after:
        before, after = entry.before.get(name), entry.after.get(name)
        label = _label(model, name) if model else name
        kinds = {type(before), type(after)}
        if dict in kinds and kinds <= {dict, type(None)}:
            before, after = before or {}, after or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(
                        FieldChange(
                            field=f"{label} · {key.replace('_', ' ')}",
                            before=_plain(before.get(key)),
                            after=_plain(after.get(key)),
                        )
                    )
            continue
        if model is None:
            changes.append(FieldChange(field=label, before=_plain(before), after=_plain(after)))
        else:
            changes.append(
                FieldChange(
                    field=label,
                    before=_readable(model, name, before, related),
                    after=_readable(model, name, after, related),
                )
            )
    return changes


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


# The audit log's object types, with the page that shows one object of each.
AUDITED_PAGES = {
    "cluster": "clusters:cluster_detail",
    "host": "clusters:host_detail",
    "vm": "clusters:vm_detail",
    "migrationpolicy": "policies:policy_detail",
    "migrationjob": "migrations:job_detail",
}


def audit_model(object_type: str) -> type[models.Model] | None:
    from django.apps import apps

    for app_label in ("clusters", "policies", "migrations_app", "core"):
        try:
            return apps.get_model(app_label, object_type)
        except LookupError:
            continue
    return None
