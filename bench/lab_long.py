"""Long migrations on the lab: Ferry's overhead on a migration of a minute or more, Ferry's own
time per migration, and how long a killed agent takes to be noticed.

    LAB_ID=bench python -m bench.lab_long --out var/bench/lab_long.json   (bench/run.py --only lab_long)

Runs on the lab that LAB_ID names (default "bench": netns ferrylab-bench, state in var/lab-bench/),
brought up without a guest if it is not up, and down again at the end if this run brought it up.
Ferry's side is the bench database and broker (bench/common.py), with one Celery worker per host
serving that host's queue, as bench/lab_migrations.py sets them up.

A guest with FILL MiB of non-zero RAM behind a cluster bandwidth of MBPS Mbit/s (Ferry gives
libvirt MBPS // 8 MiB/s), so each migration lasts a minute or more:

- lab_long_overhead_ratio: the same guest migrates through Ferry (POST -> Redis -> the source's
  worker -> libvirt -> the job's terminal state; wall time = finished_at - the POST's start) and
  by a bare virDomainMigrateToURI3 call with the flags and params of Ferry's plan for that
  direction (wall time = the call, from opening the connection), alternating F D (D F ...), in
  the same run. The figure: median Ferry wall time / median direct wall time. Goal <= 1.02.
- ferry_own_ms: inside each of Ferry's runs, its wall time minus the libvirt call's own duration
  (dispatch, claim, connections, checking the domain on both hosts, ending the job); the median.
  Goal <= 50 ms.
- dead_agent_detect_s: a migration through Ferry; once it runs, SIGKILL of the source host's
  worker (the agent), which is then started again, as its service manager would. Ferry's
  reconciler runs on its schedule (FERRY_RECONCILE_INTERVAL_S) with the production heartbeat
  timeout (FERRY_HEARTBEAT_TIMEOUT_S). The figure: seconds from the kill to the job's terminal
  state, which must be the true one (the domain runs on exactly the host the job says).
  Goal <= 120 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, Worker, django_setup, log, summary, write_json
from bench.lab_migrations import (
    LAB_ID,
    Ferry,
    cannot_run,
    direct_migrate,
    lab_sh,
    lab_state,
    lab_up,
    other,
    start_guest,
)

GUEST = "longvm"


def where(state: dict[str, Any], guest_uuid: str) -> dict[str, str | None]:
    from ferry_agent import virt

    return {
        name: virt.domain_state(host["libvirt_uri"], guest_uuid, timeout=10) for name, host in state["hosts"].items()
    }


def dead_agent(ferry: Ferry, state: dict[str, Any], guest: dict[str, Any]) -> dict[str, Any]:
    """Kill -9 the source's worker mid-migration, start it again, let the reconciler find out."""
    from django.conf import settings

    from core.routing import host_queue
    from migrations_app.models import TERMINAL_STATES, MigrationJob
    from migrations_app.tasks import reconcile

    vm = ferry.vm(guest)
    source = ferry.lab_name(vm.host_id)
    destination = ferry.hosts[other(source)]
    response = ferry.client.post(
        f"/api/vms/{vm.pk}/migrate/",
        {"destination_host": str(destination.pk)},
        content_type="application/json",
        headers=ferry.headers,
    )
    if response.status_code != 202:
        raise RuntimeError(f"migrate: {response.status_code} {response.content[:300]!r}")
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while True:
        job = MigrationJob.objects.get(pk=job_id)
        if job.state == "running" and job.progress >= 1:
            break
        if job.state in TERMINAL_STATES or time.monotonic() > deadline:
            raise RuntimeError(f"the job never ran: {job.state} {job.error}")
        time.sleep(0.2)
    worker = ferry.workers[source]
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)
    killed = time.monotonic()
    progress_at_kill = job.progress
    log(f"lab: agent of {source} killed at {progress_at_kill} % of job {job_id}")
    again = Worker(f"lab-{source}-again", [host_queue(ferry.hosts[source].pk)], concurrency=1)
    ferry.workers[source] = again
    again.wait_ready()
    restarted_s = time.monotonic() - killed
    interval = float(settings.FERRY_RECONCILE_INTERVAL_S)
    next_reconcile = killed + interval  # Celery beat's schedule: some time within an interval
    limit = killed + 600
    while True:
        job = MigrationJob.objects.get(pk=job_id)
        if job.state in TERMINAL_STATES:
            break
        if time.monotonic() > limit:
            raise RuntimeError(f"job {job_id} still {job.state} ten minutes after the kill")
        if time.monotonic() >= next_reconcile:
            reconcile()
            next_reconcile += interval
        time.sleep(0.2)
    detect_s = time.monotonic() - killed
    # Detection is when the terminal state is stored; the database's clock says when exactly.
    domains = where(state, guest["uuid"])
    running = [name for name, s in domains.items() if s in ("up", "paused")]
    vm.refresh_from_db()
    expected = destination if job.state == "succeeded" else ferry.hosts[source]
    true_state = running == [ferry.lab_name(expected.pk)] and vm.host_id == expected.pk
    result = {
        "job": job_id,
        "state": job.state,
        "error": job.error,
        "progress_at_kill": progress_at_kill,
        "detect_s": round(detect_s, 1),
        "agent_restarted_after_s": round(restarted_s, 1),
        "heartbeat_timeout_s": settings.FERRY_HEARTBEAT_TIMEOUT_S,
        "reconcile_interval_s": interval,
        "domains": domains,
        "true_state": true_state,
        "libvirt_call_s": (job.stats or {}).get("seconds"),
    }
    log(f"lab: dead agent: job {job.state} {detect_s:.1f} s after the kill; domains {domains}; true: {true_state}")
    return result


def warm_up(ferry: Ferry, timeout: float = 60) -> None:
    """Each worker runs its host's capability and inventory tasks once before anything is measured
    (its process, libvirt's binding, its database and broker connections are then warm), as an
    agent that has been up for a while is: a long migration's own time is not a cold start's."""
    from clusters.models import Host
    from migrations_app.tasks import enqueue_refresh_capabilities

    before = {pk: Host.objects.get(pk=pk).capabilities_updated_at for pk in (h.pk for h in ferry.hosts.values())}
    for host in ferry.hosts.values():
        enqueue_refresh_capabilities(host)
    deadline = time.monotonic() + timeout
    while any(Host.objects.get(pk=pk).capabilities_updated_at == at for pk, at in before.items()):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not run their warm-up tasks")
        time.sleep(0.2)
    time.sleep(1)  # the inventory task, sent second, has run too


def run(*, reps: int, mem: int, fill: int, mbps: int, keep_lab: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"lab_id": LAB_ID, "guest": {"mem_mib": mem, "fill_mib": fill}, "mbps": mbps}
    started_lab = lab_up()
    state = lab_state()
    ferry = None
    try:
        guest = start_guest(GUEST, mem=mem, fill=fill, vcpus=1)
        ferry = Ferry(state)
        ferry.sync()
        ferry.patch_cluster({"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": mbps})
        ferry.start_workers()
        warm_up(ferry)
        order = (["ferry", "direct", "direct", "ferry"] * reps)[: 2 * reps]
        runs = []
        for kind in order:
            vm = ferry.vm(guest)
            source = ferry.lab_name(vm.host_id)
            if kind == "ferry":
                entry = ferry.migrate(guest, timeout=900)
            else:
                entry = direct_migrate(state, guest["uuid"], source, ferry.plan(vm, ferry.hosts[other(source)]))
                # Ferry learns where the VM is now, as its monitoring would: the first round marks
                # it unknown on the host that no longer lists it, the second moves it.
                ferry.sync()
                ferry.sync()
            runs.append(entry)
            log(
                f"lab: {kind:6s} {entry['direction']}: {entry['state']}, {entry['wall_s']} s "
                f"(libvirt call {entry.get('libvirt_call_s', entry['wall_s'])} s), {entry['throughput_mib_s']} MiB/s"
            )
            if entry["state"] != "succeeded":
                raise RuntimeError(f"a benchmark migration failed: {entry}")
        ferry_walls = [r["wall_s"] for r in runs if r["kind"] == "ferry"]
        direct_walls = [r["wall_s"] for r in runs if r["kind"] == "direct"]
        own = [(r["wall_s"] - r["libvirt_call_s"]) * 1000 for r in runs if r["kind"] == "ferry"]
        result["overhead"] = {
            "runs": runs,
            "ferry_wall_s": summary(ferry_walls, 3),
            "direct_wall_s": summary(direct_walls, 3),
            "ratio": round(statistics.median(ferry_walls) / statistics.median(direct_walls), 4),
            "ferry_own_ms": summary(own, 1),
        }
        result["dead_agent"] = dead_agent(ferry, state, guest)
        with contextlib.suppress(Exception):
            lab_sh("rm-guest", GUEST, timeout=120)
    finally:
        if ferry is not None:
            ferry.stop_workers()
        if started_lab and not keep_lab:
            with contextlib.suppress(Exception):
                lab_sh("down", timeout=180)
            log(f"lab: LAB_ID={LAB_ID} lab/lab.sh down")
    return result


def figures(result: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    fig: dict[str, tuple[Any, str]] = {}
    if "overhead" in result:
        fig["lab_long_overhead_ratio"] = (result["overhead"]["ratio"], "ratio")
        fig["ferry_own_ms"] = (result["overhead"]["ferry_own_ms"]["p50"], "ms")
    if "dead_agent" in result:
        dead = result["dead_agent"]
        fig["dead_agent_detect_s"] = (dead["detect_s"] if dead["true_state"] else None, "s")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=1, help="migrations of each kind (F D, F D D F, ...)")
    parser.add_argument("--mem", type=int, default=1280)
    parser.add_argument("--fill", type=int, default=1024)
    parser.add_argument("--mbps", type=int, default=120, help="the cluster's custom bandwidth (120: 15 MiB/s)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up if this run started it")
    parser.add_argument("--out", type=Path, default=OUT / "lab_long.json")
    args = parser.parse_args()
    reason = cannot_run()
    if reason:
        write_json(args.out, {"skipped": reason})
        log(f"lab_long: skipped: {reason}")
        return
    django_setup()
    OUT.mkdir(parents=True, exist_ok=True)
    result = run(reps=args.reps, mem=args.mem, fill=args.fill, mbps=args.mbps, keep_lab=args.keep_lab)
    write_json(args.out, result)
    for name, (value, unit) in figures(result).items():
        print(f"FIGURE {name} {'n/a' if value is None else value} {unit}", flush=True)


if __name__ == "__main__":
    main()
