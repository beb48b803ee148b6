"""What a cluster's migration options will silently turn into, said before any VM migrates.

The notes restate none of the resolver's rules: they are the decisions of plans the resolver itself
makes. `cluster_notes` resolves the migration of a reference VM (one that sets nothing itself)
between two reference hosts that report support for everything, then once from and once to each of
the cluster's own hosts:

- a decision the reference plan makes at every link speed is said as that plan says it;
- one that depends on the link speed (the automatic bandwidth) is said with the speeds it applies
  to, found by resolving at the lowest and highest reference speeds and bisecting between them;
- one that only a real host's reports cause names that host (and how many others share it).

`form_notes` reads the values from a ClusterForm, so the panel follows the form as it is edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from clusters.forms import ClusterForm, form_choice, form_positive_int
from clusters.models import Bandwidth, ParallelPolicy
from core.choices import TriState
from migrations_app.resolver import (
    AUTO,
    MAX_CONNECTIONS,
    ClusterValues,
    Defaults,
    HostValues,
    VMValues,
    resolve_plan,
)
from migrations_app.selectors import global_defaults, host_values, policy_values

#: The link speeds (Mbit/s) between which a decision that depends on them is looked for.
SLOWEST_LINK_MBPS = 100
FASTEST_LINK_MBPS = 400_000
#: A VM that sets nothing itself, with enough vCPUs that they never limit its connections.
REFERENCE_VM = VMValues(vcpus=MAX_CONNECTIONS, policy=None)
# Documentation addresses (RFC 5737), owned by the reference hosts: they never reach anything.
REFERENCE_SOURCE = HostValues(
    address="192.0.2.1",
    destination_uri="qemu+tls://192.0.2.1/system",
    zerocopy_migrations=True,
    parallel_migrations=True,
    addresses=("192.0.2.1",),
)
REFERENCE_DESTINATION = replace(
    REFERENCE_SOURCE, address="192.0.2.2", destination_uri="qemu+tls://192.0.2.2/system", addresses=("192.0.2.2",)
)
HOSTS_NAMED = 3
NO_DEFAULTS = Defaults()


@dataclass(frozen=True)
class Note:
    code: str
    message: str


def _decisions(
    cluster: ClusterValues, defaults: Defaults, source: HostValues, destination: HostValues
) -> dict[str, str]:
    plan = resolve_plan(vm=REFERENCE_VM, cluster=cluster, source=source, destination=destination, defaults=defaults)
    return {decision.code: decision.message for decision in plan.decisions}


def _at(speed: int | None) -> tuple[HostValues, HostValues]:
    return replace(REFERENCE_SOURCE, link_speed_mbps=speed), replace(REFERENCE_DESTINATION, link_speed_mbps=speed)


#: Common link speeds (Mbit/s), one of which illustrates a decision that depends on the speed.
COMMON_LINKS_MBPS = (1_000, 10_000, 25_000, 40_000, 100_000, 200_000, 400_000)


def _speed(mbps: int) -> str:
    return f"{mbps // 1000} Gbit/s" if mbps % 1000 == 0 else f"{mbps:,} Mbit/s"


def _threshold(cluster: ClusterValues, defaults: Defaults, code: str, present_when_slow: bool) -> int:
    """The lowest link speed at which `code`'s presence is as at the fastest reference speed."""
    low, high = SLOWEST_LINK_MBPS, FASTEST_LINK_MBPS  # presence at low != presence at high
    while high - low > 1:
        middle = (low + high) // 2
        if (code in _decisions(cluster, defaults, *_at(middle))) == present_when_slow:
            low = middle
        else:
            high = middle
    return high


def cluster_notes(
    cluster: ClusterValues, *, defaults: Defaults = NO_DEFAULTS, hosts: Sequence[HostValues] = ()
) -> list[Note]:
    """The decisions every migration in a cluster with these options will report, from the
    resolver's own plans (see the module's docstring)."""
    notes: list[Note] = []
    if cluster.migration_bandwidth == AUTO:
        slow = _decisions(cluster, defaults, *_at(SLOWEST_LINK_MBPS))
        fast = _decisions(cluster, defaults, *_at(FASTEST_LINK_MBPS))
    else:
        slow = fast = _decisions(cluster, defaults, *_at(None))
    for code in dict.fromkeys([*slow, *fast]):
        if code in slow and code in fast:
            notes.append(Note(code, slow[code]))
            continue
        threshold = _threshold(cluster, defaults, code, present_when_slow=code in slow)
        if code in slow:
            example = max((s for s in COMMON_LINKS_MBPS if s < threshold), default=SLOWEST_LINK_MBPS)
            when = f"Between hosts linked below {_speed(threshold)}, at {_speed(example)} for example"
        else:
            example = min((s for s in COMMON_LINKS_MBPS if s >= threshold), default=FASTEST_LINK_MBPS)
            when = f"Between hosts linked at {_speed(threshold)} or faster, at {_speed(example)} for example"
        message = _decisions(cluster, defaults, *_at(example))[code]
        notes.append(Note(code, f"{when}: {message[0].lower()}{message[1:]}"))

    said = {note.code for note in notes}
    by_code: dict[str, list[tuple[str, str]]] = {}
    for host in hosts:
        source, destination = _at(host.link_speed_mbps or FASTEST_LINK_MBPS)
        baseline = _decisions(cluster, defaults, source, destination)
        for role_plan in (
            _decisions(cluster, defaults, host, destination),
            _decisions(cluster, defaults, source, host),
        ):
            for code, message in role_plan.items():
                if code not in baseline and code not in said:
                    by_code.setdefault(code, []).append((host.name, message))
    for code, found in by_code.items():
        message = found[0][1]
        others = list(dict.fromkeys(name for name, _ in found[1:] if name != found[0][0]))
        if others:
            shown = ", ".join(others[:HOSTS_NAMED])
            more = f" and {len(others) - HOSTS_NAMED} more" if len(others) > HOSTS_NAMED else ""
            message = f"{message} The same goes for {shown}{more}."
        notes.append(Note(code, message))
    return notes


def form_notes(form: ClusterForm) -> list[Note]:
    """What the resolver will silently change, for the values currently in a cluster form."""
    policy = form.selected_policy()
    if policy is None:
        return []
    level = form.level
    parallel = form_choice(form.value("parallel_migrations_policy"), ParallelPolicy, ParallelPolicy.DISABLED)
    cluster = ClusterValues(
        compatibility_version=level.level,
        parallel_migrations_supported=level.parallel_migrations_supported,
        policy=policy_values(policy),
        migration_bandwidth=form_choice(form.value("migration_bandwidth"), Bandwidth, Bandwidth.AUTO),
        migration_bandwidth_custom_mbps=form_positive_int(form.value("migration_bandwidth_custom_mbps")),
        migration_auto_converge=form_choice(form.value("migration_auto_converge"), TriState, TriState.INHERIT),
        migration_compressed=form_choice(form.value("migration_compressed"), TriState, TriState.INHERIT),
        migration_encrypted=form_choice(form.value("migration_encrypted"), TriState, TriState.INHERIT),
        parallel_migrations_policy=parallel,
        custom_parallel_migrations=form_positive_int(form.value("custom_parallel_migrations")),
    )
    hosts = [host_values(host) for host in form.instance.hosts.all()] if form.stored is not None else []
    return cluster_notes(cluster, defaults=global_defaults(), hosts=hosts)
