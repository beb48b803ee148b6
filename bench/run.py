#!/usr/bin/env python3
"""Ferry's benchmarks: `make bench` runs `bench/run.py --quick`.

    bench/run.py [--quick] [--only control,impact,dispatch,lab,lab_evacuation,lab_long] [--no-docs]

Runs each benchmark in a process of its own (bench/control_plane.py, bench/impact.py,
bench/dispatch.py, bench/lab_migrations.py, bench/lab_evacuation.py, bench/lab_long.py), prints a
readable table, then one line per figure,
`FIGURE <name> <value> <unit>`, and writes the full results with the machine's description to
docs/benchmarks.md and its plots to docs/benchmarks-*.png. Raw results: var/bench/.

Needs PostgreSQL (FERRY_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/ferry_bench,
dropped and created again by each run) and Redis (FERRY_BENCH_BROKER_URL, default
redis://127.0.0.1:6379/5); the lab part needs root (LAB_ID=bench lab/lab.sh, brought up and taken
down by the run). A benchmark that cannot run reports its figures as n/a and why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import OUT, PY, bench_env, log  # noqa: E402

DOCS = REPO / "docs"
MODES = {
    # API requests, page requests, dispatch jobs, lab reps, sweep reps, raw TCP seconds, evacuations
    "quick": {
        "requests": 20,
        "page_requests": 3,
        "jobs": 30,
        "reps": 6,
        "sweep_reps": 3,
        "tcp_seconds": 2,
        "evacuation_rounds": 2,
    },
    "full": {
        "requests": 100,
        "page_requests": 10,
        "jobs": 100,
        "reps": 10,
        "sweep_reps": 5,
        "tcp_seconds": 3,
        "evacuation_rounds": 4,
    },
}
SMALL = {"clusters": 5, "hosts": 10, "vms": 100, "jobs": 100, "audit": 500}
# Both modes seed the full estate: the *_200k figures always come from 200,000 VMs.
FULL = {"clusters": 1000, "hosts": 20_000, "vms": 200_000, "jobs": 100_000, "audit": 1_000_000}

# name, unit, goal text, check (None: reported, no goal)
GOALS: list[tuple[str, str, str, Any]] = [
    (
        "api_list_queries_max_200k",
        "queries",
        "<= 10, as at 100 VMs",
        lambda v, r: v <= 10 and v <= r.get("small_max", v),
    ),
    ("api_list_p50_ms_200k", "ms", "<= 50", lambda v, r: v <= 50),
    ("page_list_p50_ms_200k", "ms", "<= 150", lambda v, r: v <= 150),
    *[
        (f"api_sorted_list_p50_ms_200k_{column}", "ms", "<= 50", lambda v, r: v <= 50)
        for column in ("name", "uuid", "status", "host", "cluster", "memory_mib", "vcpus", "migration_policy")
    ],
    ("plan_p50_ms", "ms", "<= 20", lambda v, r: v <= 20),
    ("impact_p50_ms_2000_vms", "ms", "<= 300", lambda v, r: v <= 300),
    ("dispatch_p50_ms", "ms", "<= 100", lambda v, r: v <= 100),
    ("lab_overhead_ratio", "ratio", "<= 1.05", lambda v, r: v <= 1.05),
    ("lab_auto_vs_best_ratio", "ratio", ">= 0.95", lambda v, r: v >= 0.95),
    ("lab_vlvm_converges", "bool", "1", lambda v, r: v == 1),
    ("lab_minimal_converges", "bool", "report (0 expected)", None),
    ("lab_long_overhead_ratio", "ratio", "<= 1.02", lambda v, r: v <= 1.02),
    ("ferry_own_ms", "ms", "<= 50", lambda v, r: v <= 50),
    ("dead_agent_detect_s", "s", "<= 120", lambda v, r: v <= 120),
    ("evacuation_efficiency", "ratio", ">= 0.95", lambda v, r: v >= 0.95),
    ("slot_gap_ms_p50", "ms", "<= 100", lambda v, r: v <= 100),
]


def sh(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict[str, Any]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "kernel": platform.release(),
        "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "python": platform.python_version(),
        "libvirt": sh("libvirtd", "--version").split()[-1:] or ["?"],
        "qemu": sh("qemu-system-x86_64", "--version").splitlines()[:1] or ["?"],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    info["libvirt"] = info["libvirt"][0]
    info["qemu"] = info["qemu"][0].replace("QEMU emulator version ", "")
    try:
        import django

        info["django"] = django.get_version()
    except ImportError:
        pass
    try:
        import psycopg

        db = common._parse_db(common.DATABASE_URL)
        with psycopg.connect(
            host=db.get("HOST") or "127.0.0.1",
            port=int(db.get("PORT") or 5432),
            user=db.get("USER") or "postgres",
            dbname="postgres",
            connect_timeout=5,
        ) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as error:
        info["postgresql"] = f"unavailable ({type(error).__name__})"
    try:
        import redis

        info["redis"] = redis.Redis.from_url(common.BROKER_URL, socket_timeout=5).info("server")["redis_version"]
    except Exception as error:
        info["redis"] = f"unavailable ({type(error).__name__})"
    return info


def child(module: str, *args: str, timeout: float) -> None:
    """python -m bench.<module> ARGS in the bench environment; its stderr goes to ours."""
    t = time.monotonic()
    subprocess.run(
        [PY, "-m", f"bench.{module}", *args],
        cwd=REPO,
        env=bench_env(),
        check=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    log(f"{module} {' '.join(a for a in args if not a.startswith('var/'))}: {time.monotonic() - t:.0f} s")


def seed(scale: dict[str, int]) -> dict[str, Any]:
    common.recreate_database()
    args = [f"--{k}={v}" for k, v in scale.items()]
    out = OUT / "seed.json"
    child("control_plane", "seed", *args, "--out", str(out), timeout=1800)
    return json.loads(out.read_text())


def run_control(mode: dict[str, Any]) -> dict[str, Any]:
    reason = common.database_reachable()
    if reason:
        return {"skipped": reason}
    result: dict[str, Any] = {}
    result["small_seed"] = seed(SMALL)
    child(
        "control_plane",
        "measure",
        "--label",
        "small",
        "--counts-only",
        "--out",
        str(OUT / "cp-small.json"),
        timeout=600,
    )
    result["small"] = json.loads((OUT / "cp-small.json").read_text())
    result["full_seed"] = seed(FULL)
    child(
        "control_plane",
        "measure",
        "--label",
        "full",
        "--requests",
        str(mode["requests"]),
        "--page-requests",
        str(mode["page_requests"]),
        "--profile",
        "--out",
        str(OUT / "cp-full.json"),
        timeout=3600,
    )
    result["full"] = json.loads((OUT / "cp-full.json").read_text())
    return result


def run_impact(mode: dict[str, Any]) -> dict[str, Any]:
    reason = common.database_reachable()
    if reason:
        return {"skipped": reason}
    common.recreate_database()
    out = OUT / "impact.json"
    child("impact", "--vms", "2000", "--requests", str(mode["requests"]), "--out", str(out), timeout=900)
    return json.loads(out.read_text())


def run_dispatch(mode: dict[str, Any]) -> dict[str, Any]:
    reason = common.database_reachable() or common.broker_reachable()
    if reason:
        return {"skipped": reason}
    child("dispatch", "--jobs", str(mode["jobs"]), "--out", str(OUT / "dispatch.json"), timeout=1800)
    return json.loads((OUT / "dispatch.json").read_text())


def run_lab(mode: dict[str, Any]) -> dict[str, Any]:
    reason = common.database_reachable() or common.broker_reachable()
    if reason:
        return {"skipped": reason}
    child(
        "lab_migrations",
        "--reps",
        str(mode["reps"]),
        "--sweep-reps",
        str(mode["sweep_reps"]),
        "--tcp-seconds",
        str(mode["tcp_seconds"]),
        "--out",
        str(OUT / "lab.json"),
        timeout=3600,
    )
    return json.loads((OUT / "lab.json").read_text())


def run_lab_evacuation(mode: dict[str, Any]) -> dict[str, Any]:
    """Four small guests evacuated one at a time, a round per host (about two minutes)."""
    reason = common.database_reachable() or common.broker_reachable()
    if reason:
        return {"skipped": reason}
    common.recreate_database()
    out = OUT / "lab_evacuation.json"
    child("lab_evacuation", "--rounds", str(mode["evacuation_rounds"]), "--out", str(out), timeout=1800)
    return json.loads(out.read_text())


def run_lab_long(mode: dict[str, Any]) -> dict[str, Any]:
    """Not in the default --only (about ten minutes): bench/run.py --only lab_long."""
    reason = common.database_reachable() or common.broker_reachable()
    if reason:
        return {"skipped": reason}
    common.recreate_database()  # the bench database, dropped and created again, as each benchmark does
    child("lab_long", "--out", str(OUT / "lab_long.json"), timeout=3600)
    return json.loads((OUT / "lab_long.json").read_text())


# ------------------------------------------------------------------------------ figures
def figures(results: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """name -> (value, unit); None where a benchmark did not run."""
    from bench.control_plane import API_LISTS, VM_SORTS

    fig: dict[str, tuple[Any, str]] = {}
    cp = results.get("control", {})
    if "full" in cp:
        api = cp["full"]["api"]
        fig["api_list_queries_max_200k"] = (max(api[u]["queries"] for u in API_LISTS), "queries")
        fig["api_list_p50_ms_200k"] = (max(api[u]["p50"] for u in API_LISTS), "ms")
        for column in VM_SORTS:
            fig[f"api_sorted_list_p50_ms_200k_{column}"] = (cp["full"]["api_sorted"][column]["p50"], "ms")
        fig["plan_p50_ms"] = (cp["full"]["plan"]["p50"], "ms")
        fig["api_list_queries_max_at_100_vms"] = (max(cp["small"]["api"][u]["queries"] for u in API_LISTS), "queries")
        fig["api_list_queries_max_read_only_user"] = (
            max(api[u]["queries_read_only_user"] for u in API_LISTS),
            "queries",
        )
        fig["web_peak_rss_mib"] = (cp["full"]["peak_rss_mib"], "MiB")
        pages = cp["full"]["pages"]
        if pages:
            fig["page_list_queries_max_200k"] = (max(p.get("queries", 0) for p in pages.values()), "queries")
            fig["page_list_p50_ms_200k"] = (max(p.get("p50", 0) for p in pages.values()), "ms")
    impact = results.get("impact", {})
    if "ms" in impact:
        fig["impact_p50_ms_2000_vms"] = (impact["ms"]["p50"], "ms")
    d = results.get("dispatch", {})
    if "dispatch_ms" in d:
        fig["dispatch_p50_ms"] = (d["dispatch_ms"]["p50"], "ms")
        fig["dispatch_p95_ms"] = (d["dispatch_ms"]["p95"], "ms")
    from bench.lab_long import figures as lab_long_figures

    fig.update(lab_long_figures(results.get("lab_long", {})))
    from bench.lab_evacuation import figures as lab_evacuation_figures

    fig.update(lab_evacuation_figures(results.get("lab_evacuation", {})))
    lab = results.get("lab", {})
    if "overhead" in lab:
        fig["lab_overhead_ratio"] = (lab["overhead"]["ratio"], "ratio")
        fig["lab_overhead_ms"] = (lab["overhead"]["overhead_ms"], "ms")
        fig["lab_ferry_own_time_ms"] = (lab["overhead"]["ferry_own_ms"]["p50"], "ms")
        fig["lab_overhead_ratio_from_own_time"] = (lab["overhead"]["ratio_from_own_time"], "ratio")
        fig["lab_auto_vs_best_ratio"] = (lab["auto_vs_best"]["ratio"], "ratio")
        conv = lab["convergence"]
        fig["lab_vlvm_converges"] = (int(conv["very_large_vms"]["state"] == "succeeded"), "bool")
        fig["lab_minimal_converges"] = (int(conv["minimal_downtime"]["state"] == "succeeded"), "bool")
        auto_key = str(lab["auto_vs_best"]["auto_connections"] or 1)
        sweep = lab["sweep"][auto_key]
        fig["lab_migration_mib_s"] = (lab["auto_vs_best"]["auto_throughput_mib_s"], "MiB/s")
        fig["lab_raw_tcp_mib_s"] = (sweep["raw_tcp_mib_s"]["p50"], "MiB/s")
        fig["lab_migration_vs_tcp_ratio"] = (
            round(lab["auto_vs_best"]["auto_throughput_mib_s"] / sweep["raw_tcp_mib_s"]["p50"], 3),
            "ratio",
        )
        downtimes = [r["downtime_ms"] for r in lab["overhead"]["runs"] if r["downtime_ms"] is not None]
        fig["lab_downtime_p50_ms"] = (sorted(downtimes)[len(downtimes) // 2], "ms")
        fig["lab_vlvm_downtime_ms"] = (conv["very_large_vms"]["downtime_ms"], "ms")
        workers = lab["worker_memory_after_convergence"]
        fig["worker_peak_rss_mib"] = (max(w["peak_rss_max_mib"] for w in workers.values()), "MiB")
    return fig


def status(name: str, value: Any, results: dict[str, Any]) -> str:
    goal = next((g for g in GOALS if g[0] == name), None)
    if goal is None or goal[3] is None:
        return ""
    if value is None:
        return "n/a"
    small = results.get("control", {}).get("small", {}).get("api", {})
    context = {"small_max": max((e["queries"] for e in small.values()), default=value)}
    return "pass" if goal[3](value, context) else "MISS"


def table(fig: dict[str, tuple[Any, str]], results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for name, unit, goal, _ in GOALS:
        value = fig.get(name, (None, unit))[0]
        rows.append((name, "n/a" if value is None else str(value), unit, goal, status(name, value, results)))
    for name, (value, unit) in fig.items():
        if not any(name == g[0] for g in GOALS):
            rows.append((name, str(value), unit, "", ""))
    return rows


def print_report(rows, fig, results) -> None:
    widths = [max(len(r[i]) for r in [("figure", "value", "unit", "goal", "status"), *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format("figure", "value", "unit", "goal", "status"))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    for name, why in results.get("skipped", {}).items():
        print(f"({name}: not run: {why})")
    print()
    for name, unit, _, _ in GOALS:
        value = fig.get(name, (None, unit))[0]
        print(f"FIGURE {name} {'n/a' if value is None else value} {unit}")
    for name, (value, unit) in fig.items():
        if not any(name == g[0] for g in GOALS):
            print(f"FIGURE {name} {value} {unit}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: under 15 minutes on 2 cores")
    parser.add_argument("--only", default="control,impact,dispatch,lab,lab_evacuation")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md and its plots")
    parser.add_argument(
        "--report-only", action="store_true", help="no benchmark: the table and docs again from var/bench/results.json"
    )
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((OUT / "results.json").read_text())
        fig = figures(results)
        rows = table(fig, results)
        if not args.no_docs:
            from bench.report import write_docs

            write_docs(results, rows)
        print_report(rows, fig, results)
        return 0
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results: dict[str, Any] = {"mode": mode_name, "parameters": mode, "machine": machine(), "skipped": {}}
    results["started_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    failed = False
    steps = {
        "control": run_control,
        "impact": run_impact,
        "dispatch": run_dispatch,
        "lab": run_lab,
        "lab_evacuation": run_lab_evacuation,
        "lab_long": run_lab_long,
    }
    for name in args.only.split(","):
        log(f"--- {name}")
        try:
            results[name] = steps[name](mode)
        except Exception as error:
            failed = True
            traceback.print_exc()
            results[name] = {"skipped": f"failed: {type(error).__name__}: {str(error)[-500:]}"}
        if "skipped" in results[name]:
            results["skipped"][name] = results[name]["skipped"]
            log(f"{name}: {results[name]['skipped']}")
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.monotonic() - t0)
    fig = figures(results)
    rows = table(fig, results)
    results["figures"] = {k: {"value": v, "unit": u} for k, (v, u) in fig.items()}
    common.write_json(OUT / "results.json", results)
    if not args.no_docs:
        from bench.report import write_docs

        write_docs(results, rows)
        log(f"wrote {DOCS.relative_to(REPO)}/benchmarks.md and its plots")
    log(f"{mode_name} benchmarks took {results['wall_s']} s")
    print_report(rows, fig, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
