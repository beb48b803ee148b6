"""Health and metrics: GET /health/ (anyone), /health/detail/ (staff), GET /metrics (allowed addresses)."""

from __future__ import annotations

import ipaddress
import os

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from core.security import client_address
from ops import health
from ops.metrics import collector

ferry_registry = CollectorRegistry(auto_describe=False)
ferry_registry.register(collector)


@require_GET
@never_cache
def health_view(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming those that do not. Only the
    names: what failed, and why, is in the log and the staff-only detail."""
    probes = health.checks()
    failing = [probe.name for probe in probes if not probe.ok]
    body: dict = {"status": "unavailable" if failing else "ok"}
    body |= {probe.name: "ok" if probe.ok else "unavailable" for probe in probes}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


@require_GET
@never_cache
def health_detail(request: HttpRequest) -> HttpResponse:
    """The probes with their details and timings, and each host's agent: when it last reported."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        return JsonResponse({"detail": "Staff only."}, status=403)
    probes = health.checks()
    hosts = [
        {
            "id": report.host_id,
            "name": report.name,
            "status": report.status,
            "queue": report.queue,
            "last_report_at": report.last_report_at.isoformat() if report.last_report_at else None,
            "last_report_age_s": None if report.age_s is None else round(report.age_s, 1),
            "silent": report.silent,
            "summary": report.summary,
        }
        for report in health.agent_reports()
    ]
    body = {
        "status": "ok" if all(probe.ok for probe in probes) else "unavailable",
        "checks": {
            probe.name: {"ok": probe.ok, "detail": probe.detail, "seconds": round(probe.seconds, 4)} for probe in probes
        },
        "host_queues": settings.FERRY_HOST_QUEUES,
        "agent_silent_after_s": health.silent_after().total_seconds(),
        "hosts": hosts,
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)


def metrics_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in settings.FERRY_METRICS_ALLOWED_NETWORKS)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text (format 0.0.4, which every Prometheus reads): the request metrics of every web
    process, then Ferry's own families."""
    if not metrics_allowed(client_address(request)):
        return HttpResponse("Metrics are served only to the addresses in FERRY_METRICS_ALLOWED.\n", status=403,
                            content_type="text/plain")  # fmt: skip
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + generate_latest(ferry_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
