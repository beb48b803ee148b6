"""What a host's lifecycle needs from the layer above: emptying a host, and asking its agent.

Maintenance migrates a host's VMs away and activation asks its agent to report; both belong to
migrations_app (evacuations, the host's queue), which clusters may not import (docs/architecture.md).
clusters' services call these through the port below, and migrations_app plugs itself in when
Django starts (MigrationsAppConfig.ready). Without it, the host actions refuse to run rather than
change a status that nothing would then act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from clusters.models import Host
    from core.audit import Actor


class HostLifecycle(Protocol):
    def evacuate(self, *, actor: Actor, host: Host) -> Host:
        """preparing_for_maintenance, its VMs migrated away; maintenance once none is left."""
        ...

    def stop_evacuation(self, *, actor: Actor, host: Host) -> None:
        """The host's evacuation ends: its queued migrations are cancelled, running ones finish."""
        ...

    def request_report(self, host: Host) -> None:
        """Ask the host's agent to report its capabilities and inventory (sent by the caller on commit)."""
        ...


_lifecycle: HostLifecycle | None = None


def register(lifecycle: HostLifecycle) -> None:
    global _lifecycle
    _lifecycle = lifecycle


def host_lifecycle() -> HostLifecycle:
    if _lifecycle is None:
        raise ImproperlyConfigured("No host lifecycle is registered: migrations_app is not installed.")
    return _lifecycle
