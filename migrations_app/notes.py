"""Plain-English notes on what a cluster's migration options will silently turn into.

`cluster_notes` is a pure function over the values chosen in the cluster form; `form_notes` reads
them from a ClusterForm. It follows the resolver's rules
(migrations_app/resolver.py) and uses the same decision codes, so the form tells an admin
beforehand what every migration's plan will later report. What depends on the VM or the link
speed is said with "when"; what depends on the hosts is said only when their reports are known.
"""

from __future__ import annotations

from dataclasses import dataclass

from clusters.forms import ClusterForm, form_choice, form_positive_int
from clusters.models import Bandwidth, ParallelPolicy
from core.choices import TriState
from migrations_app.resolver import (
    ENCRYPTION_MIN_LEVEL,
    HYPERVISOR_BANDWIDTH_MIB_S,
    MBIT_PER_CONNECTION,
    DecisionCode,
    Defaults,
    PolicyValues,
    level_tuple,
    policy_override_message,
    tri_state,
)
from migrations_app.selectors import global_defaults, policy_values
from policies.convergence import has_postcopy, has_schedule

NO_DEFAULTS = Defaults()
PARALLEL_LABELS = {"disabled": "Disabled", "auto": "Auto", "auto_parallel": "Auto Parallel", "custom": "Custom"}


@dataclass(frozen=True)
class Note:
    code: str
    message: str


def cluster_notes(
    *,
    policy: PolicyValues,
    level: str,
    parallel_supported: bool,
    parallel: str,
    bandwidth: str,
    bandwidth_custom_mbps: int | None,
    encrypted: str,
    compressed: str,
    auto_converge: str = "inherit",
    defaults: Defaults = NO_DEFAULTS,
    hosts_without_zerocopy: tuple[str, ...] = (),
    hosts_without_parallel: tuple[str, ...] = (),
) -> list[Note]:
    """What the resolver will decide for every migration in a cluster with these options."""
    notes: list[Note] = []

    def note(code: str, message: str) -> None:
        notes.append(Note(DecisionCode(code).value, message))

    for code, setting, cluster_value, policy_value in (
        ("auto_converge_policy_override", "auto-converge", auto_converge, policy.auto_convergence),
        ("compression_policy_override", "compression", compressed, policy.migration_compression),
    ):
        if "inherit" not in (cluster_value, policy_value) and cluster_value != policy_value:
            note(code, policy_override_message(setting, policy))

    is_encrypted = tri_state(encrypted, defaults.encrypted)
    if is_encrypted and level_tuple(level) < ENCRYPTION_MIN_LEVEL:
        note(
            "encryption_unsupported_level",
            f"Compatibility version {level} does not support migration encryption: migrations are not encrypted.",
        )
        is_encrypted = False
    if parallel != "disabled" and not parallel_supported:
        note(
            "parallel_unsupported_level",
            f"Compatibility version {level} does not support parallel migrations: "
            f"the parallel setting {PARALLEL_LABELS.get(parallel, parallel)} is ignored.",
        )
        parallel = "disabled"

    zerocopy = False
    if policy.zerocopy:
        if not parallel_supported:
            note(
                "zerocopy_unsupported_level",
                f"Compatibility version {level} does not support parallel migrations: "
                f"{policy.name} will migrate without zero-copy.",
            )
        elif is_encrypted:
            source = " (the global default)" if encrypted == "inherit" else ""
            note("zerocopy_disabled_encryption", f"Encryption is on{source}: zero-copy will not be used.")
        else:
            zerocopy = True
    if zerocopy and parallel in ("disabled", "auto"):
        if parallel == "disabled":
            message = "Parallel migrations are disabled: they will be enabled automatically for this policy."
        else:
            message = (
                "Parallel migrations are Auto: this policy needs them, so Auto Parallel is used "
                "(at least 2 connections)."
            )
        note("parallel_enforced", message)
        parallel = "auto_parallel"
    if zerocopy and hosts_without_zerocopy:
        note(
            "zerocopy_unsupported_host",
            f"{_hosts(hosts_without_zerocopy)} not reported zero-copy support: "
            "migrations from there run without zero-copy.",
        )
    if parallel != "disabled" and hosts_without_parallel:
        note(
            "parallel_unsupported_host",
            f"{_hosts(hosts_without_parallel)} no parallel migrations: migrations from there are not parallel.",
        )

    if bandwidth == "hypervisor_default":
        note(
            "bandwidth_hypervisor_default",
            "Bandwidth is the hypervisor default: each migration is limited to its source host's own cap "
            f"({HYPERVISOR_BANDWIDTH_MIB_S} MiB/s where the host reports none).",
        )
    parallel_for_sure, parallel_maybe = _parallel(note, parallel, bandwidth, bandwidth_custom_mbps)
    when = "" if parallel_for_sure else " when a migration runs in parallel"
    if parallel_for_sure or parallel_maybe:
        if policy.migration_compression == "inherit":
            is_compressed = tri_state(compressed, defaults.compressed)
            whose = "Compression is on"
        else:
            is_compressed = policy.migration_compression == "true"
            whose = f"{policy.name} compresses migrations"
        if is_compressed:
            note(
                "compression_disabled",
                f"{whose}, but parallel migrations are not compressed: compression is switched off{when}.",
            )
        if has_postcopy(policy.convergence):
            note(
                "postcopy_removed",
                f"{policy.name} switches to post-copy when a migration stalls, which parallel migrations "
                f"cannot do: those steps are removed{when}.",
            )
    if not has_schedule(policy.convergence):
        note(
            "hypervisor_schedule",
            f"{policy.name} sets no convergence schedule: the hypervisor's own is used (downtime from "
            "101 ms to 500 ms, and a migration still running after 42 memory passes is stopped).",
        )
    return notes


def _hosts(names: tuple[str, ...]) -> str:
    shown = ", ".join(sorted(names)[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"Host {shown} has" if len(names) == 1 else f"Hosts {shown} have"


def _parallel(note, parallel: str, bandwidth: str, custom_mbps: int | None) -> tuple[bool, bool]:
    """Whether migrations will be parallel: (always, only sometimes). Notes the automatic fallback."""
    if parallel == "disabled":
        return False, False
    if parallel == "custom":
        return True, False
    outcome = "2 connections are used" if parallel == "auto_parallel" else "the migration is not parallel"
    if bandwidth == "hypervisor_default":
        note(
            "parallel_fallback",
            f"Bandwidth is the hypervisor default, so the number of parallel connections cannot be derived: {outcome}.",
        )
        return parallel == "auto_parallel", False
    if bandwidth == "custom" and custom_mbps:
        # From the cluster's figure before it is shared between migrations, as oVirt's engine does.
        automatic = (custom_mbps // 8) * 8 // MBIT_PER_CONNECTION
        if automatic < 2:
            note(
                "parallel_fallback",
                f"{custom_mbps} Mbit/s is too little for 2 automatic connections (one per 10 Gbit/s): {outcome}.",
            )
            return parallel == "auto_parallel", False
        return True, False
    if parallel == "auto_parallel":
        return True, False
    return False, True


def form_notes(form: ClusterForm) -> list[Note]:
    """What the resolver will silently change, for the values currently in a cluster form."""
    policy = form.selected_policy()
    if policy is None:
        return []
    level = form.level
    hosts = list(form.instance.hosts.all()) if form.stored is not None else []
    return cluster_notes(
        policy=policy_values(policy),
        level=level.level,
        parallel_supported=level.parallel_migrations_supported,
        parallel=form_choice(form.value("parallel_migrations_policy"), ParallelPolicy, ParallelPolicy.DISABLED),
        bandwidth=form_choice(form.value("migration_bandwidth"), Bandwidth, Bandwidth.AUTO),
        bandwidth_custom_mbps=form_positive_int(form.value("migration_bandwidth_custom_mbps")),
        encrypted=form_choice(form.value("migration_encrypted"), TriState, TriState.INHERIT),
        compressed=form_choice(form.value("migration_compressed"), TriState, TriState.INHERIT),
        auto_converge=form_choice(form.value("migration_auto_converge"), TriState, TriState.INHERIT),
        defaults=global_defaults(),
        hosts_without_zerocopy=tuple(
            h.name for h in hosts if (h.capabilities or {}).get("zerocopy_migrations") is not True
        ),
        hosts_without_parallel=tuple(
            h.name for h in hosts if (h.capabilities or {}).get("parallel_migrations") is False
        ),
    )
