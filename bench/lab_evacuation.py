"""Maintenance that empties a host, on the lab: how well an evacuation uses its migration slots.

    LAB_ID=bench python -m bench.lab_evacuation --out var/bench/lab_evacuation.json
    (or: bench/run.py --only lab_evacuation)

Runs on the lab that LAB_ID names (default "bench"), brought up without a guest if it is not up,
and down again at the end if this run brought it up. Ferry's side is the bench database and broker
(bench/common.py), one Celery worker per host serving that host's queue, as in bench/lab_long.py.

GUESTS small guests (MEM MiB, FILL MiB of non-zero RAM) start on one host of a cluster under Very
large VMs (one migration per host at a time). Each round puts the host that runs them into
maintenance through the API (POST /api/hosts/{id}/maintenance/, as an admin does), waits for it
to reach maintenance, and activates it again (its agent reports at once); the next round empties
the other host. Every VM the lab runs there moves, the guests' and any other.

- evacuation_efficiency: per round, (sum of each job's own migration time, finished_at -
  started_at) / (the evacuation's makespan: from the maintenance request to the host reaching
  maintenance); the median over the rounds. 1.0 means the single slot never stood idle. Goal
  >= 0.95.
- slot_gap_ms_p50: between consecutive jobs of one evacuation (one slot: the source's), the time
  from one job's end (finished_at) to the next job's start (started_at, the agent's claim); the
  median over every gap of every round. Goal <= 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, django_setup, log, summary, write_json
from bench.lab_migrations import LAB_ID, Ferry, cannot_run, lab_sh, lab_state, lab_up, other, start_guest

PREFIX = "evac"


def evacuate(ferry: Ferry, source: str, timeout: float = 600) -> dict[str, Any]:
    """One maintenance of the lab host `source` through the API, measured; the host is activated again."""
    from config.embedded_agent import local_agent
    from ferry_agent import runner
    from migrations_app.models import Evacuation

    host = ferry.hosts[source]
    t0 = time.time()
    response = ferry.client.post(f"/api/hosts/{host.pk}/maintenance/", headers=ferry.headers)
    if response.status_code != 202:
        raise RuntimeError(f"maintenance: {response.status_code} {response.content[:300]!r}")
    evacuation = Evacuation.objects.filter(host=host).latest("started_at")
    deadline = time.monotonic() + timeout
    while True:
        host.refresh_from_db()
        if host.status == "maintenance":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{source} still {host.status} after {timeout} s: {host.status_reason}")
        time.sleep(0.1)
    evacuation.refresh_from_db()
    jobs = list(evacuation.jobs.order_by("started_at"))
    if not jobs or any(job.state != "succeeded" for job in jobs):
        raise RuntimeError(f"evacuation of {source}: {[(job.state, job.error) for job in jobs]}")
    own = [(job.finished_at - job.started_at).total_seconds() for job in jobs]
    makespan = (evacuation.ended_at - evacuation.started_at).total_seconds()
    gaps = [
        (later.started_at - earlier.finished_at).total_seconds() * 1000 for earlier, later in itertools.pairwise(jobs)
    ]
    if any(gap < 0 for gap in gaps):
        raise RuntimeError(f"two jobs of {source} overlapped under one migration per host: {gaps}")
    result = {
        "source": source,
        "vms": len(jobs),
        "request_s": round(time.time() - t0, 3),
        "makespan_s": round(makespan, 3),
        "migration_s": [round(seconds, 3) for seconds in own],
        "efficiency": round(sum(own) / makespan, 4),
        "gaps_ms": [round(gap, 1) for gap in gaps],
        "first_start_after_ms": round((jobs[0].started_at - evacuation.started_at).total_seconds() * 1000, 1),
        "last_end_to_maintenance_ms": round((evacuation.ended_at - jobs[-1].finished_at).total_seconds() * 1000, 1),
    }
    log(
        f"lab: evacuation of {source}: {len(jobs)} VMs in {makespan:.2f} s, migrations {sum(own):.2f} s, "
        f"efficiency {result['efficiency']}, gaps {result['gaps_ms']} ms"
    )
    response = ferry.client.post(f"/api/hosts/{host.pk}/activate/", headers=ferry.headers)
    if response.status_code not in (200, 202):
        raise RuntimeError(f"activate: {response.status_code} {response.content[:300]!r}")
    runner.refresh_capabilities(local_agent(str(host.pk)))  # its agent reports: the host is up again
    host.refresh_from_db()
    if host.status != "up":
        raise RuntimeError(f"{source} did not come back up: {host.status} {host.status_reason}")
    return result


def run(*, guests: int, rounds: int, mem: int, fill: int, keep_lab: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"lab_id": LAB_ID, "guests": guests, "guest": {"mem_mib": mem, "fill_mib": fill}}
    started_lab = lab_up()
    names = [f"{PREFIX}-{index}" for index in range(1, guests + 1)]
    ferry = None
    try:
        for name in names:
            start_guest(name, mem=mem, fill=fill, vcpus=1)
        state = lab_state()
        ferry = Ferry(state)  # the bench cluster under Very large VMs: one migration per host
        ferry.sync()
        ferry.start_workers()
        source = ferry.lab_name(ferry.vm(state["guests"][names[0]]).host_id)
        rounds_out = []
        for _ in range(rounds):
            rounds_out.append(evacuate(ferry, source))
            ferry.sync()
            source = other(source)
        gaps = [gap for entry in rounds_out for gap in entry["gaps_ms"]]
        result["rounds"] = rounds_out
        result["efficiency"] = statistics.median(entry["efficiency"] for entry in rounds_out)
        result["gaps_ms"] = summary(gaps, 1)
    finally:
        if ferry is not None:
            ferry.stop_workers()
        for name in names:
            with contextlib.suppress(Exception):
                lab_sh("rm-guest", name, timeout=120)
        if started_lab and not keep_lab:
            with contextlib.suppress(Exception):
                lab_sh("down", timeout=180)
            log(f"lab: LAB_ID={LAB_ID} lab/lab.sh down")
    return result


def figures(result: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    fig: dict[str, tuple[Any, str]] = {}
    if "rounds" in result:
        fig["evacuation_efficiency"] = (round(result["efficiency"], 3), "ratio")
        fig["slot_gap_ms_p50"] = (result["gaps_ms"]["p50"], "ms")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=4, help="guests evacuated each round (at least 4)")
    parser.add_argument("--rounds", type=int, default=2, help="evacuations, alternating the hosts")
    parser.add_argument("--mem", type=int, default=256)
    parser.add_argument("--fill", type=int, default=64)
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up if this run started it")
    parser.add_argument("--out", type=Path, default=OUT / "lab_evacuation.json")
    args = parser.parse_args()
    reason = cannot_run()
    if reason:
        write_json(args.out, {"skipped": reason})
        log(f"lab_evacuation: skipped: {reason}")
        return
    django_setup()
    OUT.mkdir(parents=True, exist_ok=True)
    result = run(guests=args.guests, rounds=args.rounds, mem=args.mem, fill=args.fill, keep_lab=args.keep_lab)
    write_json(args.out, result)
    for name, (value, unit) in figures(result).items():
        print(f"FIGURE {name} {'n/a' if value is None else value} {unit}", flush=True)


if __name__ == "__main__":
    main()
