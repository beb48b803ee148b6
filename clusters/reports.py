"""When each host's agent last reported, and whether it is silent: read by the health detail,
`ferry check`, the metrics and a queued job's page (which says when no agent serves its queue)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from clusters.models import Host, HostStatus


def silent_after() -> timedelta:
    """A host's agent that has not reported for this long is not serving its queue: it reports
    every FERRY_CAPABILITIES_INTERVAL_S, so three missed reports (and at least 5 minutes)."""
    return timedelta(seconds=max(300, 3 * settings.FERRY_CAPABILITIES_INTERVAL_S))


def last_report_at(host: Host) -> datetime | None:
    """When the host's agent last reported."""
    return host.capabilities_updated_at


@dataclass(frozen=True)
class AgentReport:
    host_id: str
    name: str
    status: str
    queue: str
    last_report_at: datetime | None
    age_s: float | None
    silent: bool

    @property
    def summary(self) -> str:
        if self.last_report_at is None:
            return "has never reported"
        return f"last reported {_age(self.age_s or 0.0)} ago"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def agent_report(host: Host, *, now: datetime | None = None) -> AgentReport:
    from core.routing import host_queue

    now = now or timezone.now()
    last = last_report_at(host)
    age = None if last is None else max(0.0, (now - last).total_seconds())
    return AgentReport(
        host_id=str(host.pk),
        name=host.name,
        status=host.status,
        queue=host_queue(host.pk),
        last_report_at=last,
        age_s=age,
        silent=host.status != HostStatus.MAINTENANCE and (last is None or now - last > silent_after()),
    )


def agent_reports() -> list[AgentReport]:
    now = timezone.now()
    return [agent_report(host, now=now) for host in Host.objects.order_by("name")]
