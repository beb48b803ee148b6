"""GET /metrics: Prometheus text for the allowed addresses only, with django-prometheus's request
metrics and Ferry's own families computed from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from clusters.models import HostStatus
from core.models import AuditEntry
from ops import metrics
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory, HostFactory, JobFactory, VMFactory

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def fresh_totals(monkeypatch):
    """Each test sees a process that has not scraped yet (the counters live per process)."""
    monkeypatch.setattr(metrics.collector, "totals", metrics.JobTotals())


def scrape(**extra) -> dict[str, dict[tuple, float]]:
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def ended(state, *, seconds, stats=None, **kwargs):
    finished = timezone.now() - timedelta(minutes=1)
    return JobFactory(
        state=state,
        progress=100 if state == "succeeded" else 10,
        started_at=finished - timedelta(seconds=seconds),
        finished_at=finished,
        stats=stats or {},
        **kwargs,
    )


@pytest.fixture
def zerocopy_vm():
    cluster = ClusterFactory(migration_policy_id=VERY_LARGE_VMS_ID, parallel_migrations_policy="auto_parallel")
    return VMFactory(host=HostFactory(cluster=cluster))


def test_metrics_are_refused_to_an_address_not_in_the_list():
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403
    assert b"ferry_" not in response.content


def test_metrics_are_served_to_loopback_by_default():
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_the_allowed_list_comes_from_settings(settings):
    settings.FERRY_METRICS_ALLOWED_NETWORKS = [__import__("ipaddress").ip_network("192.0.2.0/24")]

    assert Client().get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_behind_the_proxy_the_address_the_proxy_saw_decides(settings):
    settings.FERRY_BEHIND_PROXY = True
    # Through the local proxy: REMOTE_ADDR is the proxy's loopback address, the client is outside.
    outside = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9")
    assert outside.status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_request_metrics_come_from_django_prometheus():
    Client().get("/health/")

    samples = scrape()

    assert sum(samples["django_http_requests_total_by_method_total"].values()) >= 1
    assert "django_http_responses_total_by_status_total" in samples


def test_migration_counters_and_histograms_come_from_the_jobs_table(zerocopy_vm):
    ended("succeeded", seconds=100, stats={"downtime_ms": 50, "data_processed": 1024 * MIB, "seconds": 10.0})
    ended("failed", seconds=5, error={"code": "migration_failed", "message": "x"})
    JobFactory(state="queued")
    JobFactory(state="running", started_at=timezone.now())
    ended("succeeded", seconds=30, vm=zerocopy_vm)

    samples = scrape()

    started = samples["ferry_migrations_started_total"]
    assert started[(("policy", "Minimal downtime"),)] == 3
    assert started[(("policy", "Very large VMs"),)] == 1
    ended_ = samples["ferry_migrations_ended_total"]
    assert ended_[(("policy", "Minimal downtime"), ("state", "succeeded"))] == 1
    assert ended_[(("policy", "Minimal downtime"), ("state", "failed"))] == 1
    assert ended_[(("policy", "Very large VMs"), ("state", "succeeded"))] == 1
    duration = samples["ferry_migration_duration_seconds_bucket"]
    assert duration[(("le", "60.0"), ("state", "succeeded"))] == 1
    assert duration[(("le", "120.0"), ("state", "succeeded"))] == 2
    assert duration[(("le", "5.0"), ("state", "failed"))] == 1
    assert samples["ferry_migration_duration_seconds_sum"][(("state", "succeeded"),)] == pytest.approx(130)
    downtime = samples["ferry_migration_downtime_seconds_bucket"]
    assert downtime[(("le", "0.025"),)] == 0
    assert downtime[(("le", "0.05"),)] == 1
    assert samples["ferry_migration_downtime_seconds_count"][()] == 1
    throughput = samples["ferry_migration_throughput_mib_per_second_bucket"]
    assert throughput[(("le", "100.0"),)] == 0
    assert throughput[(("le", "250.0"),)] == 1  # 1024 MiB in 10 s
    assert samples["ferry_jobs"][(("state", "queued"),)] == 1
    assert samples["ferry_jobs"][(("state", "running"),)] == 1


def test_zero_copy_used_and_refused_are_counted_by_decision(zerocopy_vm):
    JobFactory(vm=zerocopy_vm)
    refused_vm = VMFactory(host=HostFactory(cluster=zerocopy_vm.host.cluster), migration_encrypted="true")
    job = JobFactory(vm=refused_vm)
    assert job.plan["zerocopy"] is False

    zerocopy = scrape()["ferry_migration_zerocopy_total"]

    assert zerocopy[(("decision", ""), ("outcome", "used"))] == 1
    assert zerocopy[(("decision", "zerocopy_disabled_encryption"), ("outcome", "refused"))] == 1


def test_hosts_by_status_and_each_hosts_last_report_age():
    reported = HostFactory(name="hv01", capabilities_updated_at=timezone.now() - timedelta(seconds=90))
    HostFactory(name="hv02", status=HostStatus.NON_OPERATIONAL, capabilities_updated_at=None)

    samples = scrape()

    assert samples["ferry_hosts"][(("status", "up"),)] == 1
    assert samples["ferry_hosts"][(("status", "non_operational"),)] == 1
    assert samples["ferry_hosts"][(("status", "maintenance"),)] == 0
    ages = samples["ferry_host_last_report_age_seconds"]
    assert 89 <= ages[(("host", "hv01"), ("host_id", str(reported.pk)))] < 120
    assert [value for labels, value in ages.items() if ("host", "hv02") in labels] == [float("inf")]


def test_reconciler_actions_come_from_its_audit_entries():
    job = ended("failed", seconds=7300, error={"code": "agent_lost", "message": "x"})
    for action in ("failed", "failed", "succeeded"):
        AuditEntry.objects.create(
            actor="ferry.reconcile", action=action, object_type="migrationjob", object_id=str(job.pk)
        )
    AuditEntry.objects.create(actor="ferry.reconcile", action="update", object_type="vm", object_id="x")

    actions = scrape()["ferry_reconciler_actions_total"]

    assert actions == {(("action", "failed"),): 2, (("action", "succeeded"),): 1}


def test_a_second_scrape_counts_only_what_is_new_and_never_counts_down():
    first = ended("succeeded", seconds=10)
    assert scrape()["ferry_migrations_ended_total"][(("policy", "Minimal downtime"), ("state", "succeeded"))] == 1

    ended("succeeded", seconds=10)
    first.vm.delete()  # its job goes with it: the counter keeps it

    samples = scrape()
    assert samples["ferry_migrations_ended_total"][(("policy", "Minimal downtime"), ("state", "succeeded"))] == 2
    assert samples["ferry_migration_duration_seconds_count"][(("state", "succeeded"),)] == 2


def test_a_job_that_ends_after_the_last_scrape_is_counted_once_it_ends():
    job = JobFactory(state="running", started_at=timezone.now() - timedelta(seconds=20))
    assert "ferry_migrations_ended_total" not in scrape()
    job.state, job.progress, job.finished_at = "succeeded", 100, timezone.now()
    job.save()

    samples = scrape()
    scrape()

    assert samples["ferry_migrations_started_total"][(("policy", "Minimal downtime"),)] == 1
    assert samples["ferry_migrations_ended_total"][(("policy", "Minimal downtime"), ("state", "succeeded"))] == 1
    assert scrape()["ferry_migrations_ended_total"][(("policy", "Minimal downtime"), ("state", "succeeded"))] == 1
