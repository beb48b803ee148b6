"""The host lifecycle that clusters' services reach through clusters.lifecycle: maintenance
empties the host (migrations_app.evacuation), activation ends that and asks the host's agent
to report (a task on its queue)."""

from __future__ import annotations

from clusters.models import Host
from core.audit import Actor
from migrations_app.evacuation import evacuation_stop, host_evacuate
from migrations_app.host_tasks import enqueue_refresh_capabilities


class EvacuatingLifecycle:
    def evacuate(self, *, actor: Actor, host: Host) -> Host:
        return host_evacuate(actor=actor, host=host)

    def stop_evacuation(self, *, actor: Actor, host: Host) -> None:
        evacuation_stop(actor=actor, host=host)

    def request_report(self, host: Host) -> None:
        enqueue_refresh_capabilities(host)


LIFECYCLE = EvacuatingLifecycle()
