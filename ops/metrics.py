"""Ferry's own Prometheus families (`ferry_*`), computed from the database when scraped.

Why from the database: Ferry runs as several processes (gunicorn's workers, Celery's pool, the
agents on the hypervisors), and a job starts in one and ends in another. Counting in-process
would need shared state between them; the database already holds every fact. So:

- Gauges (jobs queued and running, hosts by status, each host's last report age) are counted
  at every scrape.
- Counters and histograms of migrations (started, ended, seconds, downtime, throughput, zero-copy
  used or refused) are derived from the jobs table too, incrementally: each process remembers
  which jobs it has counted and reads only the jobs created, started or finished since its last
  scrape (with an overlap for transactions that committed late), so a scrape costs the new
  jobs, and only a process's first scrape reads the whole table. Counters never go down, even when
  a job is deleted later; every process derives the same totals from the same table, so any
  gunicorn worker may answer a scrape. A restarted process counts the table again from the start
  (Prometheus sees a counter reset, as after any restart).
- Reconciler actions come from the audit trail (its entries by the reconciler), read the same
  way by their time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.fields.json import KT, KeyTransform
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from clusters.models import Host, HostStatus
from core.models import AuditEntry
from migrations_app.models import ACTIVE_STATES, TERMINAL_STATES, JobState, MigrationJob
from ops import health

#: Jobs whose commit came this late after their timestamp are still counted.
OVERLAP = timedelta(minutes=10)
MIB = 1024 * 1024
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
DOWNTIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
THROUGHPUT_BUCKETS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
#: Decisions that say why a plan whose policy asks for zero-copy does not use it.
ZEROCOPY_REFUSALS = frozenset(
    {
        "zerocopy_disabled_encryption",
        "zerocopy_unsupported_host",
        "zerocopy_unsupported_level",
        "parallel_unsupported_host",
        "zerocopy_memtune_limit",
    }
)
RECONCILE_ACTOR = "ferry.reconcile"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.bounds = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: list[tuple[str, float]] = [
            (floatToGoString(bound), float(count)) for bound, count in zip(self.bounds, self.counts, strict=True)
        ]
        return [*cumulative, ("+Inf", float(self.count))]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class JobTotals:
    """The counters and histograms of one process, fed with the jobs it has not counted yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: datetime | None = None
        self.counted: dict[str, dict[str, datetime]] = {}  # job id -> event -> when (inside the overlap)
        self.started: Counter[str] = Counter()
        self.ended: Counter[tuple[str, str]] = Counter()
        self.zerocopy: Counter[tuple[str, str]] = Counter()
        self.duration: dict[str, Histogram] = {}
        self.downtime = Histogram(DOWNTIME_BUCKETS)
        self.throughput = Histogram(THROUGHPUT_BUCKETS)
        self.counted_audit: dict[int, datetime] = {}
        self.reconciler: Counter[str] = Counter()

    def refresh(self, now: datetime | None = None) -> None:
        with self.lock:
            now = now or timezone.now()
            jobs = MigrationJob.objects.all()
            if self.since is not None:
                edge = self.since - OVERLAP
                jobs = jobs.filter(Q(created_at__gte=edge) | Q(started_at__gte=edge) | Q(finished_at__gte=edge))
            rows = jobs.values(
                "id",
                "state",
                "created_at",
                "started_at",
                "finished_at",
                policy=KT("plan__policy__name"),
                zerocopy=KeyTransform("zerocopy", "plan"),
                decisions=KeyTransform("decisions", "plan"),
                downtime_ms=KeyTransform("downtime_ms", "stats"),
                data_processed=KeyTransform("data_processed", "stats"),
                seconds=KeyTransform("seconds", "stats"),
            )
            for row in rows.iterator(chunk_size=2000):
                self._count(row)
            self._count_reconciler(None if self.since is None else self.since - OVERLAP)
            self.since = now
            edge = now - OVERLAP
            recent = {job: {e: t for e, t in events.items() if t >= edge} for job, events in self.counted.items()}
            self.counted = {job: events for job, events in recent.items() if events}
            self.counted_audit = {pk: at for pk, at in self.counted_audit.items() if at >= edge}

    def _once(self, job_id: str, event: str, at: datetime | None) -> bool:
        """True the first time this process sees this event of this job."""
        if at is None:
            return False
        events = self.counted.setdefault(job_id, {})
        if event in events or (self.since is not None and at < self.since - OVERLAP):
            return False
        events[event] = at
        return True

    def _count(self, row: Mapping[str, Any]) -> None:
        job_id, policy = str(row["id"]), row["policy"] or "unknown"
        if self._once(job_id, "created", row["created_at"]):
            if row["zerocopy"] is True:
                self.zerocopy["used", ""] += 1
            else:
                decisions = row["decisions"] if isinstance(row["decisions"], list) else []
                codes = {str(d.get("code")) for d in decisions if isinstance(d, dict)} & ZEROCOPY_REFUSALS
                for code in sorted(codes):
                    self.zerocopy["refused", code] += 1
        if self._once(job_id, "started", row["started_at"]):
            self.started[policy] += 1
        if row["state"] in TERMINAL_STATES and self._once(job_id, "finished", row["finished_at"]):
            self.ended[row["state"], policy] += 1
            if row["started_at"] is not None:
                seconds = (row["finished_at"] - row["started_at"]).total_seconds()
                self.duration.setdefault(row["state"], Histogram(DURATION_BUCKETS)).observe(max(0.0, seconds))
            if row["state"] == JobState.SUCCEEDED:
                downtime = _number(row["downtime_ms"])
                if downtime is not None:
                    self.downtime.observe(downtime / 1000)
                data, seconds = _number(row["data_processed"]), _number(row["seconds"])
                if data is not None and seconds:
                    self.throughput.observe(data / MIB / seconds)

    def _count_reconciler(self, edge: datetime | None) -> None:
        entries = AuditEntry.objects.filter(actor=RECONCILE_ACTOR, object_type="migrationjob")
        if edge is not None:
            entries = entries.filter(at__gte=edge)
        for pk, at, action in entries.values_list("pk", "at", "action").iterator(chunk_size=2000):
            if pk not in self.counted_audit:
                self.counted_audit[pk] = at
                self.reconciler[action] += 1

    def families(self) -> Iterator[Metric]:
        started = CounterMetricFamily(
            "ferry_migrations_started", "Migrations that started running, by policy.", labels=["policy"]
        )
        for policy, count in sorted(self.started.items()):
            started.add_metric([policy], count)
        yield started
        ended = CounterMetricFamily(
            "ferry_migrations_ended", "Migrations that ended, by state and policy.", labels=["state", "policy"]
        )
        for (state, policy), count in sorted(self.ended.items()):
            ended.add_metric([state, policy], count)
        yield ended
        duration = HistogramMetricFamily(
            "ferry_migration_duration_seconds", "Seconds from start to end of ended migrations.", labels=["state"]
        )
        for state, histogram in sorted(self.duration.items()):
            duration.add_metric([state], histogram.buckets(), histogram.sum)
        yield duration
        downtime = HistogramMetricFamily(
            "ferry_migration_downtime_seconds", "The guest's downtime in succeeded migrations (libvirt's figure)."
        )
        downtime.add_metric([], self.downtime.buckets(), self.downtime.sum)
        yield downtime
        throughput = HistogramMetricFamily(
            "ferry_migration_throughput_mib_per_second",
            "Data moved per second in succeeded migrations (data processed over the call's seconds).",
        )
        throughput.add_metric([], self.throughput.buckets(), self.throughput.sum)
        yield throughput
        zerocopy = CounterMetricFamily(
            "ferry_migration_zerocopy",
            "Migration plans with zero-copy used, or refused by a decision (its code).",
            labels=["outcome", "decision"],
        )
        for (outcome, code), count in sorted(self.zerocopy.items()):
            zerocopy.add_metric([outcome, code], count)
        yield zerocopy
        reconciler = CounterMetricFamily(
            "ferry_reconciler_actions",
            "Jobs the reconciler ended, by the state it ended them in.",
            labels=["action"],
        )
        for action, count in sorted(self.reconciler.items()):
            reconciler.add_metric([action], count)
        yield reconciler


class FerryCollector(Collector):
    """Every `ferry_*` family, read from the database when Prometheus scrapes."""

    def __init__(self) -> None:
        self.totals = JobTotals()

    def describe(self) -> list:
        return []  # families are only known at scrape time: never collect at registration

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        self.totals.refresh(now)
        yield from self.totals.families()

        jobs = GaugeMetricFamily("ferry_jobs", "Migration jobs queued or running now.", labels=["state"])
        active = dict(MigrationJob.objects.filter(state__in=ACTIVE_STATES).values_list("state").annotate(n=Count("pk")))
        for state in ACTIVE_STATES:
            jobs.add_metric([state], active.get(state, 0))
        yield jobs

        hosts = GaugeMetricFamily("ferry_hosts", "Hosts by status.", labels=["status"])
        by_status = dict(Host.objects.values_list("status").annotate(n=Count("pk")))
        for status in HostStatus.values:
            hosts.add_metric([status], by_status.get(status, 0))
        yield hosts

        age = GaugeMetricFamily(
            "ferry_host_last_report_age_seconds",
            "Seconds since each host's agent last reported (+Inf: never).",
            labels=["host", "host_id"],
        )
        for report in health.agent_reports():
            age.add_metric([report.name, report.host_id], float("inf") if report.age_s is None else report.age_s)
        yield age


collector = FerryCollector()
