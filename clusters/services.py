"""Writes to cluster levels, clusters, hosts and VMs. Each is validated, versioned and audited."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clusters.models import VM, Cluster, ClusterLevel, Host, HostStatus, validate_capabilities
from core.audit import Actor, audit_record
from core.services import ModelServices, object_create, object_delete, object_update

ADMIN_HOST_STATUSES = (HostStatus.UP, HostStatus.MAINTENANCE)


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
            {"status": "Admins set a host Up or Maintenance; monitoring sets Non operational and Unknown."}
        )


def host_create(*, actor: Actor, data: dict[str, Any]) -> Host:
    _check_admin_status(data.get("status"))
    return object_create(actor=actor, instance=Host(**data))


def host_update(*, actor: Actor, host: Host, data: dict[str, Any], expected_version: int | None = None) -> Host:
    if "status" in data and data["status"] != host.status:
        _check_admin_status(data["status"])
    return object_update(actor=actor, instance=host, changes=data, expected_version=expected_version)


def host_delete(*, actor: Actor, host: Host, expected_version: int | None = None) -> None:
    object_delete(actor=actor, instance=host, expected_version=expected_version)


def host_set_maintenance(*, actor: Actor, host: Host) -> Host:
    return object_update(actor=actor, instance=host, changes={"status": HostStatus.MAINTENANCE}, action="maintenance")


def host_activate(*, actor: Actor, host: Host) -> Host:
    return object_update(actor=actor, instance=host, changes={"status": HostStatus.UP}, action="activate")


def host_report_capabilities(*, actor: Actor, host: Host, capabilities: dict[str, Any]) -> Host:
    """A host agent's report: store it; a host that reports is reachable, so a lost one is up again."""
    try:
        validate_capabilities(capabilities)
    except ValidationError as error:
        raise ValidationError({"capabilities": error.messages}) from None
    changes: dict[str, Any] = {"capabilities": capabilities, "capabilities_updated_at": timezone.now()}
    if host.status in (HostStatus.NON_OPERATIONAL, HostStatus.UNKNOWN):
        changes["status"] = HostStatus.UP
    return object_update(actor=actor, instance=host, changes=changes, action="capabilities")


def host_request_refresh(*, actor: Actor, host: Host) -> None:
    """Ask the host's agent to report its capabilities now; the task is sent once the audit entry is committed."""
    from migrations_app.tasks import enqueue_refresh_capabilities

    with transaction.atomic():
        audit_record(actor=actor, action="refresh", instance=host, before=None, after=None)
        transaction.on_commit(lambda: enqueue_refresh_capabilities(host))


def host_mark_unreachable(*, actor: Actor, host: Host) -> Host:
    if host.status == HostStatus.MAINTENANCE:
        return host
    return object_update(
        actor=actor, instance=host, changes={"status": HostStatus.NON_OPERATIONAL}, action="unreachable"
    )


def vm_create(*, actor: Actor, data: dict[str, Any]) -> VM:
    return object_create(actor=actor, instance=VM(**data))


def vm_update(*, actor: Actor, vm: VM, data: dict[str, Any], expected_version: int | None = None) -> VM:
    return object_update(actor=actor, instance=vm, changes=data, expected_version=expected_version)


def vm_delete(*, actor: Actor, vm: VM, expected_version: int | None = None) -> None:
    if vm.migration_jobs.filter(state__in=("queued", "running")).exists():
        raise ValidationError("This VM is being migrated; cancel the migration or wait for it to end.")
    object_delete(actor=actor, instance=vm, expected_version=expected_version)


LEVEL_SERVICES = ModelServices(ClusterLevel, "level", update_service=level_update)
CLUSTER_SERVICES = ModelServices(Cluster, "cluster", cluster_create, cluster_update, cluster_delete)
HOST_SERVICES = ModelServices(Host, "host", host_create, host_update, host_delete)
VM_SERVICES = ModelServices(VM, "vm", vm_create, vm_update, vm_delete)
