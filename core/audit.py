"""Audit records, written by services in the same transaction as the change they describe."""

from __future__ import annotations

import datetime
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import models

from core.models import AuditEntry
from ferry_common import logs


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a user, or a task acting on its own."""

    name: str
    user: Any = None

    @classmethod
    def of(cls, user) -> Actor:
        return cls(name=user.get_username(), user=user)

    @classmethod
    def task(cls, name: str) -> Actor:
        return cls(name=name)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The instance's stored fields as JSON-safe values (foreign keys by id)."""
    return {field.name: _plain(getattr(instance, field.attname)) for field in instance._meta.concrete_fields}


def audit_record(
    *,
    actor: Actor,
    action: str,
    instance: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    object_type: str | None = None,
) -> AuditEntry:
    """Record a change of `instance`, under its model's name unless `object_type` names it."""
    if before is not None and after is not None:
        changed = {key for key in after if before.get(key) != after.get(key)} - {"version"}
        before = {key: before.get(key) for key in sorted(changed)}
        after = {key: after.get(key) for key in sorted(changed)}
    return AuditEntry.objects.create(
        actor=actor.name,
        user=actor.user,
        action=action,
        object_type=object_type or instance._meta.model_name or "",
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        before=before,
        after=after,
        request_id=logs.current()["request_id"] or "",
    )
