"""Writes to migration policies. Built-ins are read-only."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from core.audit import Actor
from core.rules import Rule, rule_error
from core.services import ModelServices, object_create, object_delete, object_update
from policies.models import MigrationPolicy

BUILTIN_READ_ONLY = "Built-in migration policies are read-only; create a custom policy instead."


def _refuse_builtin(policy: MigrationPolicy) -> None:
    if policy.builtin:
        raise PermissionDenied(BUILTIN_READ_ONLY)


def _check_zerocopy_in_use(policy: MigrationPolicy) -> None:
    """A policy cannot gain zero-copy while clusters or VMs use it at a level without parallel."""
    if not policy.zerocopy:
        return
    levels = sorted(
        set(
            policy.clusters.filter(compatibility_version__parallel_migrations_supported=False).values_list(
                "compatibility_version", flat=True
            )
        )
        | set(
            policy.vms.filter(host__cluster__compatibility_version__parallel_migrations_supported=False).values_list(
                "host__cluster__compatibility_version", flat=True
            )
        )
    )
    if levels:
        raise ValidationError(
            {
                "zerocopy": rule_error(
                    Rule.ZEROCOPY_IN_USE_WITHOUT_PARALLEL,
                    f"This policy is used at compatibility version {', '.join(levels)}, which does not "
                    "support parallel migrations, so it cannot use zero-copy.",
                )
            }
        )


def policy_create(*, actor: Actor, data: dict[str, Any]) -> MigrationPolicy:
    return object_create(actor=actor, instance=MigrationPolicy(**data))


def policy_update(
    *, actor: Actor, policy: MigrationPolicy, data: dict[str, Any], expected_version: int | None = None
) -> MigrationPolicy:
    _refuse_builtin(policy)
    if data.get("zerocopy") and not policy.zerocopy:
        _check_zerocopy_in_use(MigrationPolicy(pk=policy.pk, zerocopy=True))
    return object_update(actor=actor, instance=policy, changes=data, expected_version=expected_version)


def policy_delete(*, actor: Actor, policy: MigrationPolicy, expected_version: int | None = None) -> None:
    _refuse_builtin(policy)
    if policy.clusters.exists() or policy.vms.exists():
        raise rule_error(Rule.IN_USE, "This policy is in use by clusters or VMs; choose another policy for them first.")
    object_delete(actor=actor, instance=policy, expected_version=expected_version)


POLICY_SERVICES = ModelServices(MigrationPolicy, "policy", policy_create, policy_update, policy_delete)
