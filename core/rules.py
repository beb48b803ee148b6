"""The codes of Ferry's model rules: refusals of well-formed input that depend on another field, on
stored state or on this deployment's settings, which no schema can state.

Each such ValidationError carries one of these codes, defined once here and read everywhere else
(the services and models that raise them, the API tests that tell a rule from a schema mismatch).
They are stable: clients may rely on them. A refusal the schema can state (a type, a range, an
enumeration, a pattern) is not a rule and has no code here.
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import ValidationError


class Rule(StrEnum):
    # Clusters and VMs
    CUSTOM_BANDWIDTH_REQUIRED = "custom_bandwidth_required"
    CUSTOM_PARALLEL_REQUIRED = "custom_parallel_required"
    PARALLEL_UNSUPPORTED_LEVEL = "parallel_unsupported_level"
    POLICY_NOT_OFFERED = "policy_not_offered"
    # Hosts
    LIBVIRT_URI_NOT_ALLOWED = "libvirt_uri_not_allowed"
    # Migration policies
    STALLING_LIMITS_INCREASE = "stalling_limits_increase"
    ZEROCOPY_IN_USE_WITHOUT_PARALLEL = "zerocopy_in_use_without_parallel"
    # Deleting
    IN_USE = "in_use"
    VM_MIGRATING = "vm_migrating"
    # Migrations
    VM_NOT_MIGRATABLE = "vm_not_migratable"
    DESTINATION_IS_SOURCE = "destination_is_source"
    DESTINATION_OTHER_CLUSTER = "destination_other_cluster"
    DESTINATION_NOT_UP = "destination_not_up"
    SOURCE_ACTIVATING = "source_activating"
    NO_DESTINATION = "no_destination"
    JOB_ENDED = "job_ended"
    # API tokens
    EXPIRY_GIVEN_TWICE = "expiry_given_twice"
    EXPIRES_IN_PAST = "expires_in_past"
    EXPIRES_AFTER_CALLER = "expires_after_caller"


def rule_error(rule: Rule, message: str) -> ValidationError:
    """A refusal under `rule`: the message says why, the code which rule."""
    return ValidationError(message, code=rule.value)
