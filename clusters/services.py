"""Writes to cluster levels, clusters, hosts and VMs. Each is validated, versioned and audited."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clusters.lifecycle import host_lifecycle
from clusters.models import (
    MAINTENANCE_STATUSES,
    VM,
    AdminHostStatus,
    Cluster,
    ClusterLevel,
    Host,
    HostStatus,
    validate_capabilities_report,
)
from core.audit import Actor, audit_record, snapshot
from core.rules import Rule, rule_error
from core.services import ModelServices, StaleVersion, object_create, object_delete, object_update

ADMIN_HOST_STATUSES = tuple(AdminHostStatus)


def level_update(
    *, actor: Actor, level: ClusterLevel, data: dict[str, Any], expected_version: int | None = None
) -> ClusterLevel:
    """Only whether the level supports parallel migrations changes; a level is never renamed."""
    changes = {name: value for name, value in data.items() if name == "parallel_migrations_supported"}
    return object_update(actor=actor, instance=level, changes=changes)


def cluster_create(*, actor: Actor, data: dict[str, Any]) -> Cluster:
    return object_create(actor=actor, instance=Cluster(**data))


def cluster_update(
    *, actor: Actor, cluster: Cluster, data: dict[str, Any], expected_version: int | None = None
) -> Cluster:
    return object_update(actor=actor, instance=cluster, changes=data, expected_version=expected_version)


def cluster_delete(*, actor: Actor, cluster: Cluster, expected_version: int | None = None) -> None:
    object_delete(actor=actor, instance=cluster, expected_version=expected_version)


def _check_admin_status(status: str | None) -> None:
    if status is not None and status not in ADMIN_HOST_STATUSES:
        raise ValidationError(
            {
                # Not a rule: the API's schema states the statuses an edit may set (AdminHostStatus).
                "status": ValidationError(
                    "Admins set a host Up (it is activating until its agent reports) or Maintenance; "
                    "monitoring sets the others.",
                    code="invalid_choice",
                )
            }
        )


def host_create(*, actor: Actor, data: dict[str, Any]) -> Host:
    _check_admin_status(data.get("status"))
    if data.get("status") == HostStatus.UP:
        # Up only on its agent's report: a new host said to be up is activated.
        with transaction.atomic():
            host = object_create(actor=actor, instance=Host(**(data | {"status": HostStatus.UNKNOWN})))
            return host_activate(actor=actor, host=host)
    return object_create(actor=actor, instance=Host(**data))


def host_update(*, actor: Actor, host: Host, data: dict[str, Any], expected_version: int | None = None) -> Host:
    if "status" in data and data["status"] != host.status:
        _check_admin_status(data["status"])
    stored_status = Host.objects.filter(pk=host.pk).values_list("status", flat=True).first()
    if data.get("status") == HostStatus.UP and stored_status not in (HostStatus.UP, None):
        # Up only on its agent's report: an edit that brings a host up is an activation.
        with transaction.atomic():
            host = object_update(
                actor=actor,
                instance=host,
                changes={name: value for name, value in data.items() if name != "status"},
                expected_version=expected_version,
            )
            return host_activate(actor=actor, host=host)
    if data.get("status") == HostStatus.MAINTENANCE and stored_status not in (*MAINTENANCE_STATUSES, None):
        # Maintenance empties the host first: an edit that asks for it starts the evacuation.
        with transaction.atomic():
            host = object_update(
                actor=actor,
                instance=host,
                changes={name: value for name, value in data.items() if name != "status"},
                expected_version=expected_version,
            )
            return host_set_maintenance(actor=actor, host=host)
    return object_update(actor=actor, instance=host, changes=data, expected_version=expected_version)


def host_delete(*, actor: Actor, host: Host, expected_version: int | None = None) -> None:
    object_delete(actor=actor, instance=host, expected_version=expected_version)


def _host_set(*, actor: Actor, host: Host, action: str, decide: Callable[[Host], dict[str, Any]]) -> Host:
    """Write only what `decide` returns for the row as it is stored now (locked), never the caller's copy.

    The agent's reports and the status actions go through here: they touch only status, the status
    reason and the capabilities, so an admin's edit saved during a slow libvirt call survives. The
    row's connection fields are not validated again: a host whose stored URI is refused must still
    be markable non operational.
    """
    for _attempt in range(3):
        with transaction.atomic():
            stored = Host.objects.select_for_update().get(pk=host.pk)
            changes = decide(stored)
            changes = {name: value for name, value in changes.items() if getattr(stored, name) != value}
            if not changes:
                return stored
            before = snapshot(stored)
            # Conditional on the version just read: on SQLite, where select_for_update locks
            # nothing, a writer that committed in between makes this match no row, and we decide again.
            rows = Host.objects.filter(pk=stored.pk, version=stored.version)
            if rows.update(**changes, version=F("version") + 1) == 1:
                stored.refresh_from_db()
                audit_record(actor=actor, action=action, instance=stored, before=before, after=snapshot(stored))
                return stored
    raise StaleVersion(host, host.version, Host.objects.filter(pk=host.pk).first())


def status_reason(*, check: str, message: str) -> dict[str, str]:
    """Why a host is not up: which check, what it said, when."""
    return {"check": check, "message": message[:2000], "at": timezone.now().isoformat()}


def host_set_maintenance(*, actor: Actor, host: Host) -> Host:
    """The host becomes preparing_for_maintenance and its VMs are migrated away; it is in
    maintenance once none is left (migrations_app.evacuation, through clusters.lifecycle)."""
    return host_lifecycle().evacuate(actor=actor, host=host)


def host_activate(*, actor: Actor, host: Host, ask_agent: bool = True) -> Host:
    """The host becomes Activating and its agent is asked to report: a good report brings it up.
    An evacuation of the host is cancelled (its queued migrations; running ones finish).
    ask_agent=False: the caller runs the report itself, now (manage.py lab_register)."""
    lifecycle = host_lifecycle()

    def decide(_stored: Host) -> dict[str, Any]:
        reason = status_reason(check="activation", message="Waiting for the host's agent to report.")
        return {"status": HostStatus.ACTIVATING, "status_reason": reason}

    with transaction.atomic():
        lifecycle.stop_evacuation(actor=actor, host=host)
        host = _host_set(actor=actor, host=host, action="activate", decide=decide)
        if ask_agent:
            transaction.on_commit(lambda: lifecycle.request_report(host))
    return host


def host_report_capabilities(*, actor: Actor, host: Host, capabilities: dict[str, Any]) -> Host:
    """A host agent's whole report: store it; a host that reports is reachable, so it is up again
    (unless an admin put it into maintenance). A partial or empty report is refused."""
    try:
        validate_capabilities_report(capabilities)
    except ValidationError as error:
        raise ValidationError({"capabilities": error.messages}) from None

    def decide(stored: Host) -> dict[str, Any]:
        changes: dict[str, Any] = {"capabilities": capabilities, "capabilities_updated_at": timezone.now()}
        if stored.status != HostStatus.PREPARING_FOR_MAINTENANCE:
            changes["status_reason"] = {}  # while it is emptied, the reason is the evacuation's
        if stored.status in (HostStatus.NON_OPERATIONAL, HostStatus.UNKNOWN, HostStatus.ACTIVATING):
            changes["status"] = HostStatus.UP
        return changes

    return _host_set(actor=actor, host=host, action="capabilities", decide=decide)


def host_request_refresh(*, actor: Actor, host: Host) -> None:
    """Ask the host's agent to report its capabilities now; the task is sent once the audit entry is committed."""
    lifecycle = host_lifecycle()
    with transaction.atomic():
        audit_record(actor=actor, action="refresh", instance=host, before=None, after=None)
        transaction.on_commit(lambda: lifecycle.request_report(host))


def host_mark_unreachable(
    *, actor: Actor, host: Host, check: str = "libvirt_connection", message: str = "The host's agent did not report."
) -> Host:
    """Monitoring's verdict: the host is non operational, and why (which check, its error, when).
    A host in maintenance stays there; the reason is kept all the same."""

    def decide(stored: Host) -> dict[str, Any]:
        changes: dict[str, Any] = {"status_reason": status_reason(check=check, message=message)}
        if stored.status not in MAINTENANCE_STATUSES:
            changes["status"] = HostStatus.NON_OPERATIONAL
        return changes

    return _host_set(actor=actor, host=host, action="unreachable", decide=decide)


def vm_create(*, actor: Actor, data: dict[str, Any]) -> VM:
    return object_create(actor=actor, instance=VM(**data))


def vm_update(*, actor: Actor, vm: VM, data: dict[str, Any], expected_version: int | None = None) -> VM:
    return object_update(actor=actor, instance=vm, changes=data, expected_version=expected_version)


def vm_delete(*, actor: Actor, vm: VM, expected_version: int | None = None) -> None:
    if vm.migration_jobs.filter(state__in=("queued", "running")).exists():
        raise rule_error(Rule.VM_MIGRATING, "This VM is being migrated; cancel the migration or wait for it to end.")
    object_delete(actor=actor, instance=vm, expected_version=expected_version)


LEVEL_SERVICES = ModelServices(ClusterLevel, "level", update_service=level_update)
CLUSTER_SERVICES = ModelServices(Cluster, "cluster", cluster_create, cluster_update, cluster_delete)
HOST_SERVICES = ModelServices(Host, "host", host_create, host_update, host_delete)
VM_SERVICES = ModelServices(VM, "vm", vm_create, vm_update, vm_delete)
