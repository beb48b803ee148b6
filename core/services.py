"""Generic audited writes with optimistic concurrency, used by every app's services.

Every write validates the model (full_clean) first, so nothing invalid is stored, then writes the
row and its audit entry in one transaction. Updates are a conditional UPDATE on `version`, so two
writers holding the same version cannot both win, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import F, ProtectedError

from core.audit import Actor, audit_record, snapshot
from core.models import VersionedModel
from core.rules import Rule, rule_error

_RETRIES = 3


class ConflictError(Exception):
    """The write conflicts with the object's current state (e.g. a VM that already has an active
    migration); the API answers 409 with the message."""


class StaleVersion(Exception):
    """Someone saved the object in between: the caller's version is not the stored one."""

    def __init__(self, instance: models.Model, expected: int, current: VersionedModel | None):
        self.instance = instance
        self.expected = expected
        self.current = current
        stored = current.version if current is not None else "deleted"
        super().__init__(
            f"{instance._meta.verbose_name} was changed by someone else "
            f"(you edited version {expected}, the stored version is {stored})."
        )


Write = Literal["create", "update", "delete"]
# The model permission each write needs unless a model's services say otherwise.
DEFAULT_PERMISSIONS: dict[Write, str] = {"create": "add", "update": "change", "delete": "delete"}


@dataclass(frozen=True)
class ModelServices[M: models.Model]:
    """The writes of one model, and the permission each needs.

    Every way in (the object pages, the API viewsets, Django admin) reads this one declaration
    instead of wiring the service functions itself. The functions keep their own names and take the
    object by the model's own keyword (`cluster_update(cluster=...)`), named by `argument`; a write
    left as None is not offered anywhere.
    """

    model: type[M]
    argument: str
    create_service: Callable[..., M] | None = None
    update_service: Callable[..., M] | None = None
    delete_service: Callable[..., None] | None = None
    permissions: dict[Write, str] | None = None

    def offers(self, write: Write) -> bool:
        return getattr(self, f"{write}_service") is not None

    def permission(self, write: Write) -> str:
        """The permission a write needs, e.g. "clusters.change_cluster"."""
        codename = (self.permissions or {}).get(write) or (
            f"{DEFAULT_PERMISSIONS[write]}_{self.model._meta.model_name}"
        )
        return f"{self.model._meta.app_label}.{codename}"

    def create(self, *, actor: Actor, data: dict[str, Any]) -> M:
        return self._service("create")(actor=actor, data=data)

    def update(self, *, actor: Actor, instance: M, data: dict[str, Any], expected_version: int | None = None) -> M:
        return self._service("update")(
            actor=actor, **{self.argument: instance}, data=data, expected_version=expected_version
        )

    def delete(self, *, actor: Actor, instance: M, expected_version: int | None = None) -> None:
        self._service("delete")(actor=actor, **{self.argument: instance}, expected_version=expected_version)

    def _service(self, write: Write) -> Callable[..., Any]:
        service = getattr(self, f"{write}_service")
        if service is None:
            raise PermissionDenied(f"A {self.model._meta.verbose_name} cannot be {write}d here.")
        return service


def object_create[M: models.Model](*, actor: Actor, instance: M, action: str = "create") -> M:
    instance.full_clean()
    with transaction.atomic():
        instance.save(force_insert=True)
        audit_record(actor=actor, action=action, instance=instance, before=None, after=snapshot(instance))
    return instance


def object_update[M: models.Model](
    *,
    actor: Actor,
    instance: M,
    changes: dict[str, Any],
    expected_version: int | None = None,
    action: str = "update",
) -> M:
    """Apply `changes` to the stored row and store them if `expected_version` is still current.

    The changes go onto the row as it is stored now, never onto the caller's copy, so a field the
    caller did not change (a host's status or capabilities, written meanwhile by its agent) keeps
    its stored value. A change that changes nothing stores nothing.
    """
    model = type(instance)
    for _attempt in range(_RETRIES):
        with transaction.atomic():
            stored = model._default_manager.select_for_update().filter(pk=instance.pk).first()
            if stored is None:
                raise StaleVersion(instance, expected_version or 0, None)
            if (
                isinstance(stored, VersionedModel)
                and expected_version is not None
                and stored.version != expected_version
            ):
                raise StaleVersion(instance, expected_version, stored)
            before = snapshot(stored)
            for name, value in changes.items():
                setattr(stored, name, value)
            stored.full_clean()
            after = snapshot(stored)
            if after == before:
                return stored
            values = {
                field.attname: getattr(stored, field.attname)
                for field in model._meta.concrete_fields
                if not field.primary_key and field.name != "version"
            }
            rows = model._default_manager.filter(pk=instance.pk)
            if isinstance(stored, VersionedModel):
                # The version read above: on SQLite, where select_for_update locks nothing, a
                # writer that committed in between makes this match no row, and we read again.
                rows = rows.filter(version=stored.version)
                values["version"] = F("version") + 1
            if rows.update(**values) == 1:
                if isinstance(stored, VersionedModel):
                    stored.version = model._default_manager.values_list("version", flat=True).get(pk=instance.pk)
                audit_record(actor=actor, action=action, instance=stored, before=before, after=snapshot(stored))
                return stored
        if expected_version is not None:
            break
    current = model._default_manager.filter(pk=instance.pk).first()
    # An unversioned row is stale only by being gone.
    raise StaleVersion(instance, expected_version or 0, current if isinstance(current, VersionedModel) else None)


def object_delete(*, actor: Actor, instance: models.Model, expected_version: int | None = None) -> None:
    model = type(instance)
    with transaction.atomic():
        stored = model._default_manager.select_for_update().filter(pk=instance.pk).first()
        if stored is None:
            return
        if expected_version is not None and isinstance(stored, VersionedModel) and stored.version != expected_version:
            raise StaleVersion(instance, expected_version, stored)
        audit_record(actor=actor, action="delete", instance=stored, before=snapshot(stored), after=None)
        try:
            with transaction.atomic():
                stored.delete()
        except ProtectedError as error:
            users = sorted({f"{obj._meta.verbose_name} {obj}" for obj in error.protected_objects})
            raise rule_error(
                Rule.IN_USE,
                f"{str(stored._meta.verbose_name).capitalize()} {stored} is still used by: {', '.join(users[:5])}"
                + (" and more." if len(users) > 5 else "."),
            ) from None
