"""Dispatch latency: POST /api/vms/{id}/migrate/ until the source host's task has started.

    python -m bench.dispatch --jobs 30 --out var/bench/dispatch.json

Runs on the seeded estate (bench.control_plane seed). A real Celery worker serves the source
host's queue (host.<id>) on Redis, as on a hypervisor; the API request goes through the real URL
stack in this process, whose job commit sends the task to Redis. "Started" is the job's
started_at, which migration_claim writes as the first thing the task does (queued -> running).
The seeded hosts' libvirt_uri is a UNIX socket that does not exist, so each job then fails at
once without touching anything, and the next one starts from an empty queue: this measures
latency, not throughput. Jobs run one after the other.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.common import Worker, django_setup, log, summary, write_json


def run(*, jobs: int, warmup: int = 3) -> dict[str, Any]:
    from django.test import Client

    from bench.control_plane import ADMIN_TOKEN
    from clusters.models import VM, Host
    from core.routing import host_queue
    from migrations_app.models import TERMINAL_STATES, MigrationJob

    source = (
        Host.objects.filter(status="up", vms__status="up", capabilities__zerocopy_migrations=True)
        .order_by("name")
        .first()
    )
    if source is None:
        raise SystemExit("dispatch: no seeded estate in the bench database (run the control-plane benchmark first)")
    destination = Host.objects.filter(cluster_id=source.cluster_id, status="up").exclude(pk=source.pk).first()
    vms = list(VM.objects.filter(host=source, status="up").order_by("name"))
    assert "nonexistent" in source.libvirt_uri, source.libvirt_uri  # never a real host
    queue = host_queue(source.pk)
    worker = Worker("dispatch", [queue], concurrency=2)
    client = Client()
    headers = {"Authorization": f"Token {ADMIN_TOKEN}"}
    samples: list[dict[str, Any]] = []
    try:
        worker.wait_ready()
        log(
            f"dispatch: worker ready on {queue}; {warmup} warm-up + {jobs} jobs "
            f"from {source.name} to {destination.name}"
        )
        for i in range(warmup + jobs):
            vm = vms[i % len(vms)]
            t0 = time.time()
            response = client.post(
                f"/api/vms/{vm.pk}/migrate/",
                {"destination_host": str(destination.pk)},
                content_type="application/json",
                headers=headers,
            )
            t_post = time.time()
            if response.status_code != 202:
                raise RuntimeError(f"migrate: {response.status_code} {response.content[:300]!r}")
            job_id = response.json()["id"]
            deadline = time.monotonic() + 30
            while True:
                job = MigrationJob.objects.get(pk=job_id)
                if job.state in TERMINAL_STATES:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job {job_id} still {job.state} after 30 s; see {worker.log_path}")
                time.sleep(0.05)  # started_at is the measure: polling fast would only slow the worker
            if i < warmup:
                continue
            if job.started_at is None:
                raise RuntimeError(f"job {job_id} ended without starting: {job.state} {job.error}")
            samples.append(
                {
                    "post_ms": (t_post - t0) * 1000,
                    "dispatch_ms": (job.started_at.timestamp() - t0) * 1000,
                    "queue_ms": (job.started_at.timestamp() - t_post) * 1000,
                    "finished_ms": (job.finished_at.timestamp() - t0) * 1000,
                    "state": job.state,
                    "error": (job.error or {}).get("code"),
                }
            )
        memory = worker.memory()
    finally:
        worker.stop()
    result = {
        "jobs": len(samples),
        "source": source.name,
        "destination": destination.name,
        "dispatch_ms": summary([s["dispatch_ms"] for s in samples]),
        "post_ms": summary([s["post_ms"] for s in samples]),
        "queue_ms": summary([s["queue_ms"] for s in samples]),
        "finished_ms": summary([s["finished_ms"] for s in samples]),
        "outcomes": sorted({f"{s['state']}/{s['error']}" for s in samples}),
        "samples_ms": [round(s["dispatch_ms"], 2) for s in samples],
        "worker_memory": memory,
    }
    log(f"dispatch: p50 {result['dispatch_ms']['p50']} ms (POST {result['post_ms']['p50']} ms), {result['outcomes']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django_setup()
    write_json(args.out, run(jobs=args.jobs))


if __name__ == "__main__":
    main()
