"""docs/benchmarks.md and docs/benchmarks-*.png from bench/run.py's results.

Everything in the document comes from the run's results (var/bench/results.json), except the
findings, which are written by hand in bench/notes.md and included as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NOTES = Path(__file__).with_name("notes.md")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ plots
def plot_api(cp: dict[str, Any], path: Path) -> None:
    plt = _plt()
    full = cp["full"]
    names = [*full["api"], "migration-plan"]
    p50 = [full["api"][u]["p50"] for u in full["api"]] + [full["plan"]["p50"]]
    p95 = [full["api"][u]["p95"] for u in full["api"]] + [full["plan"]["p95"]]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p95, width=0.4, label="p95", alpha=0.6)
    ax.axhline(50, color="red", linestyle="--", linewidth=1, label="list goal (50 ms)")
    ax.axhline(20, color="orange", linestyle=":", linewidth=1, label="plan goal (20 ms)")
    ax.set_xticks(list(xs), [n.replace("/api/", "").strip("/") for n in names], rotation=30, ha="right")
    ax.set_ylabel("ms per request")
    seed = cp["full_seed"]
    ax.set_title(f"API latency, pages of 100 ({seed['clusters']} clusters, {seed['hosts']} hosts, {seed['vms']} VMs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dispatch(d: dict[str, Any], path: Path) -> None:
    plt = _plt()
    samples = sorted(d["samples_ms"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], marker=".", linewidth=1)
    ax.axvline(100, color="red", linestyle="--", linewidth=1, label="goal (100 ms)")
    ax.set_xlabel("POST .../migrate/ -> task started (ms)")
    ax.set_ylabel("fraction of jobs")
    ax.set_xlim(0, max(110, samples[-1] * 1.1))
    ax.set_title(f"Dispatch latency over Redis ({d['jobs']} jobs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(lab: dict[str, Any], path: Path) -> None:
    plt = _plt()
    keys = [k for k in lab["sweep"] if k.isdigit()]
    xs = [int(k) for k in keys]
    med = [lab["sweep"][k]["throughput_mib_s"]["p50"] for k in keys]
    lo = [m - lab["sweep"][k]["throughput_mib_s"]["min"] for k, m in zip(keys, med, strict=True)]
    hi = [lab["sweep"][k]["throughput_mib_s"]["max"] - m for k, m in zip(keys, med, strict=True)]
    tcp = [lab["sweep"][k]["raw_tcp_mib_s"]["p50"] for k in keys]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=4, label="migration, by hand (median, min-max)")
    ax.plot(xs, tcp, marker="s", linestyle="--", label="raw TCP, same number of streams")
    auto = lab["auto_vs_best"]
    ax.plot(
        [auto["auto_connections"] or 1],
        [auto["auto_throughput_mib_s"]],
        marker="*",
        markersize=14,
        linestyle="none",
        color="green",
        label=f"Ferry's automatic plan ({auto['auto_connections']} connections)",
    )
    if "2-no-zerocopy" in lab["sweep"]:
        ax.plot(
            [2],
            [lab["sweep"]["2-no-zerocopy"]["throughput_mib_s"]["p50"]],
            marker="x",
            markersize=10,
            linestyle="none",
            color="purple",
            label="2 connections without zero-copy",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("parallel connections (1 = not parallel)")
    ax.set_ylabel("MiB/s")
    ax.set_ylim(0, max(tcp + med) * 1.15)
    ax.set_title("Lab migration throughput vs raw TCP between the two hosts (loopback)")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_convergence(conv: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key, color in (("very_large_vms", "tab:green"), ("minimal_downtime", "tab:red")):
        run = conv[key]
        points = run["timeline"]
        if not points:
            continue
        outcome = "converged" if run["state"] == "succeeded" else (run["error"] or {}).get("code", run["state"])
        ax.plot(
            [p["t"] for p in points],
            [p["remaining_mib"] for p in points],
            color=color,
            label=f"{run['policy']} ({run['bandwidth_mib_s']} MiB/s): {outcome}",
        )
        offset = run["started_after_s"] or 0
        for action in run["actions"]:
            if action["at_s"] is None:
                continue
            x = offset + action["at_s"]
            ax.axvline(x, color=color, alpha=0.25, linewidth=1)
            text = action["name"] if action["name"] == "abort" else f"{action['params'][0]} ms"
            ax.annotate(
                text,
                (x, 0),
                xytext=(2, 4 if key == "very_large_vms" else 16),
                textcoords="offset points",
                fontsize=6,
                color=color,
                rotation=90,
            )
    ax.set_xlabel("seconds since POST .../migrate/")
    ax.set_ylabel("data remaining (MiB)")
    ax.set_title(
        f"A guest dirtying {conv['dirty_mib_s']} MiB/s of {conv['fill_mib']} MiB behind a {conv['cap_mbps']} Mbit/s cap"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------ the document
def write_docs(results: dict[str, Any], rows: list[tuple[str, ...]]) -> None:
    DOCS.mkdir(exist_ok=True)
    m = results["machine"]
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Written by `bench/run.py` ({'`make bench`, quick mode' if results['mode'] == 'quick' else 'full mode'}) "
        f"on {results['started_at']}; the run took {results['wall_s']} s. Run it again with `make bench` "
        "(quick) or `.venv/bin/python bench/run.py` (full: more repetitions). Raw results: `var/bench/`. "
        "The findings at the end are written by hand (`bench/notes.md`); everything else comes from the run.",
        "",
        "## The machine",
        "",
        _md_table(
            ["", ""],
            [
                ["CPU", f"{m['cpus']} x {m['cpu_model']}"],
                ["memory", f"{m['memory_gib']} GiB"],
                ["OS, kernel", f"{m['os']}, Linux {m['kernel']}"],
                ["libvirt, QEMU", f"{m['libvirt']}, {m['qemu']} (guests under TCG: KVM cannot boot them here)"],
                ["Python, Django", f"{m['python']}, {m.get('django', '?')}"],
                ["PostgreSQL, Redis", f"{m['postgresql']}, {m['redis']}"],
                [
                    "load average",
                    f"{m['load_average_at_start']} at the start, {m.get('load_average_at_end')} at the end "
                    "(the machine is shared with other work: expect noise)",
                ],
            ],
        ),
        "",
        "## Figures and goals",
        "",
        _md_table(["figure", "value", "unit", "goal", "status"], [list(r) for r in rows]),
        "",
    ]
    for name, why in results.get("skipped", {}).items():
        out += [f"**{name}: not run**: {why}", ""]

    cp = results.get("control", {})
    if "full" in cp:
        plot_api(cp, DOCS / "benchmarks-api.png")
        seed, full, small = cp["full_seed"], cp["full"], cp["small"]
        out += [
            "## Control plane at scale",
            "",
            f"Seeded in bulk (bulk_create; the audit entries by one INSERT ... SELECT) in {seed['seconds']} s: "
            f"{seed['clusters']} clusters, "
            f"{seed['hosts']} hosts, {seed['vms']} VMs, {seed['jobs']} finished jobs (each with the plan the "
            f"resolver makes for it), {seed['audit']} audit entries. Requests go through the real URL stack "
            "(Django's test client in-process: middleware, token authentication, DRF, filters, serializers, JSON) "
            f"against PostgreSQL; each figure is over {results['parameters']['requests']} requests after 2 "
            "warm-up requests. Query counts at 100 VMs come from a second, small estate "
            f"({small_counts(cp)}).",
            "",
            _md_table(
                ["endpoint", "queries at 100 VMs", "queries", "read-only user", "p50 ms", "p95 ms", "KiB"],
                [
                    [
                        u,
                        small["api"][u]["queries"],
                        e["queries"],
                        e["queries_read_only_user"],
                        e["p50"],
                        e["p95"],
                        round(e["bytes"] / 1024),
                    ]
                    for u, e in full["api"].items()
                ]
                + [
                    [
                        "/api/vms/{id}/migration-plan/",
                        "",
                        full["plan"]["queries"],
                        "",
                        full["plan"]["p50"],
                        full["plan"]["p95"],
                        "",
                    ]
                ],
            ),
            "",
            "![API latency](benchmarks-api.png)",
            "",
            "Not goals, but what users of a big estate do (a deep page, filters):",
            "",
            _md_table(
                ["request", "queries", "p50 ms", "p95 ms"],
                [[u, e["queries"], e["p50"], e["p95"]] for u, e in full.get("api_extra", {}).items()],
            ),
            "",
            "The VM list sorted by each of its columns (`?ordering=`; the slower of ascending and descending):",
            "",
            _md_table(
                ["column", "queries", "p50 ms ascending", "p50 ms descending"],
                [[c, e["+"]["queries"], e["+"]["p50"], e["-"]["p50"]] for c, e in full.get("api_sorted", {}).items()],
            ),
            "",
            "Search (`?q=`): a domain UUID, a host's name, a VM's name, an address, a cluster's description:",
            "",
            _md_table(
                ["request", "queries", "p50 ms", "p95 ms"],
                [[u, e["queries"], e["p50"], e["p95"]] for u, e in full.get("search", {}).items()],
            ),
            "",
            "Unfiltered lists of large tables report PostgreSQL's row estimate (`count_is_estimate`) "
            "instead of counting every row; filtered lists count exactly.",
            "",
            "The browser's list pages (50 rows a page, session login), reported apart:",
            "",
            _md_table(
                ["page", "queries", "p50 ms", "p95 ms", "KiB of HTML"],
                [
                    [u, e.get("queries"), e.get("p50"), e.get("p95"), round(e.get("bytes", 0) / 1024)]
                    for u, e in full["pages"].items()
                ],
            ),
            "",
            f"Peak RSS (VmHWM) of the web process that served all of the above: **{full['peak_rss_mib']} MiB**.",
            "",
        ]
    d = results.get("dispatch", {})
    if "dispatch_ms" in d:
        plot_dispatch(d, DOCS / "benchmarks-dispatch.png")
        out += [
            "## Dispatch latency",
            "",
            f"POST /api/vms/{{id}}/migrate/ -> the host task has started (the job's `started_at`, written by the "
            f"task's claim), {d['jobs']} jobs one after the other after 3 warm-up jobs, Redis broker, one real "
            f"Celery worker (prefork, 2 processes) serving the source host's queue. The hosts' libvirt URIs point "
            f"at a socket that does not exist, so each job then ends at once ({', '.join(d['outcomes'])}).",
            "",
            _md_table(
                ["part", "p50 ms", "p95 ms", "min", "max"],
                [
                    ["POST -> task started", *(d["dispatch_ms"][k] for k in ("p50", "p95", "min", "max"))],
                    ["of which the POST (202)", *(d["post_ms"][k] for k in ("p50", "p95", "min", "max"))],
                    ["of which 202 -> started", *(d["queue_ms"][k] for k in ("p50", "p95", "min", "max"))],
                    ["POST -> job ended (failed)", *(d["finished_ms"][k] for k in ("p50", "p95", "min", "max"))],
                ],
            ),
            "",
            "![Dispatch latency](benchmarks-dispatch.png)",
            "",
        ]
    lab = results.get("lab", {})
    if "overhead" in lab:
        plot_sweep(lab, DOCS / "benchmarks-lab-sweep.png")
        plot_convergence(lab["convergence"], DOCS / "benchmarks-convergence.png")
        out += lab_section(lab)
    evacuation = results.get("lab_evacuation", {})
    if "rounds" in evacuation:
        out += evacuation_section(evacuation)
    if NOTES.exists():
        out += ["## Findings, profiles and changes", "", NOTES.read_text().strip(), ""]
    (DOCS / "benchmarks.md").write_text("\n".join(out).rstrip() + "\n")


def evacuation_section(evacuation: dict[str, Any]) -> list[str]:
    guest = evacuation["guest"]
    return [
        "## Evacuation on the lab",
        "",
        f"bench/lab_evacuation.py: {evacuation['guests']} guests of {guest['mem_mib']} MiB ({guest['fill_mib']} MiB "
        "of non-zero RAM) on one host of a cluster under Very large VMs (one migration per host at a time); each "
        "round puts the host that runs them into maintenance through the API, waits for `maintenance`, and "
        "activates it; the next round empties the other host. Every VM there moves (the lab's own guest too). "
        "Efficiency: the sum of the jobs' own times (finished_at - started_at) over the makespan (maintenance "
        "request to maintenance reached). Gap: one job's finished_at to the next job's started_at on the same host.",
        "",
        _md_table(
            ["round", "host", "VMs", "makespan s", "migrations s", "efficiency", "gaps ms", "first start ms"],
            [
                [
                    index,
                    entry["source"],
                    entry["vms"],
                    entry["makespan_s"],
                    round(sum(entry["migration_s"]), 3),
                    entry["efficiency"],
                    ", ".join(str(gap) for gap in entry["gaps_ms"]),
                    entry["first_start_after_ms"],
                ]
                for index, entry in enumerate(evacuation["rounds"], 1)
            ],
        ),
        "",
        f"Gaps over all rounds: p50 {evacuation['gaps_ms']['p50']} ms, p95 {evacuation['gaps_ms']['p95']} ms, "
        f"min {evacuation['gaps_ms']['min']} ms, max {evacuation['gaps_ms']['max']} ms.",
        "",
    ]


def small_counts(cp: dict[str, Any]) -> str:
    s = cp["small_seed"]
    return f"{s['clusters']} clusters, {s['hosts']} hosts, {s['vms']} VMs, {s['jobs']} jobs, {s['audit']} audit entries"


def lab_section(lab: dict[str, Any]) -> list[str]:
    g, ov, auto, plan = lab["guest"], lab["overhead"], lab["auto_vs_best"], lab["auto_plan"]
    caps = lab["hosts"]["hosta"]
    runs = ov["runs"]
    ferry = [r for r in runs if r["kind"] == "ferry"]
    started = sorted(r["started_after_s"] for r in ferry)
    out = [
        "## Real migrations on the lab",
        "",
        f"A lab of its own (`LAB_ID=bench`: two libvirtd in the network namespace `ferrylab-bench`, 127.0.0.2 and "
        f"127.0.0.3 over loopback), registered in Ferry as cluster `bench-lab` (4.7, Very large VMs), one real "
        f"Celery worker per host on Redis. The guest has {g['mem_mib']} MiB of RAM, {g['fill_mib']} MiB of it "
        f"filled with non-zero data, {g['vcpus']} vCPUs, and idles. Hosts report libvirt "
        f"{caps.get('libvirt_version')}, "
        f"QEMU {caps.get('qemu_version')}, zero-copy {caps.get('zerocopy_migrations')}, link speed "
        f"{caps.get('link_speed_mbps')}.",
        "",
        f"**Ferry's automatic plan** ({plan['policy']}): {plan['connections']} parallel connections, zero-copy "
        f"{plan['zerocopy']}, flags {', '.join(f.replace('VIR_MIGRATE_', '') for f in plan['flags'])}. Its "
        "decisions: "
        + " ".join(f"`{c}`: {m}" for c, m in zip(plan["decisions"], plan["decision_messages"], strict=True))
        + " (the lab's hosts report no link speed: loopback has none).",
        "",
        "### Overhead: through Ferry vs a direct migrateToURI3 call",
        "",
        "Alternating F D D F F D ..., the guest going back and forth, after one unmeasured warm-up of each kind. "
        "Ferry: POST -> Redis -> the source host's worker -> libvirt -> the job's terminal state, wall time = "
        "`finished_at` minus the POST's start. Direct: the plan's flags and params, from opening the connection "
        "to the call's return. Throughput = data_processed / time_elapsed from libvirt's completed-job statistics.",
        "",
        _md_table(
            ["#", "kind", "direction", "wall s", "libvirt call s", "task started after s", "MiB/s", "downtime ms"],
            [
                [
                    i + 1,
                    r["kind"],
                    r["direction"],
                    r["wall_s"],
                    r.get("libvirt_call_s"),
                    r.get("started_after_s"),
                    r["throughput_mib_s"],
                    r["downtime_ms"],
                ]
                for i, r in enumerate(runs)
            ],
        ),
        "",
        _md_table(
            ["direction", "runs", "Ferry wall s p50", "direct wall s p50", "ratio", "difference ms"],
            [
                [k, v["runs"], v["ferry_wall_s_p50"], v["direct_wall_s_p50"], v["ratio"], v["overhead_ms"]]
                for k, v in ov["per_direction"].items()
            ],
        ),
        "",
        f"The ratio of medians, per direction (the two directions differ), averaged over both: "
        f"**{ov['ratio']}** ({ov['overhead_ms']} ms). Inside Ferry's runs, the time outside the libvirt call "
        f"(dispatch, claim, connections, checking the domain on both hosts, the job's end) has a median of "
        f"{ov['ferry_own_ms']['p50']} ms (min {ov['ferry_own_ms']['min']}, max {ov['ferry_own_ms']['max']}), of which "
        f"{round(started[len(started) // 2] * 1000)} ms until the task started; added to the direct call's median, "
        f"that alone makes a ratio of {ov['ratio_from_own_time']}. The rest of the difference between the kinds is "
        "the libvirt call itself varying from run to run (see the spread of each kind above).",
        "",
        "### Automatic plan vs a sweep by hand",
        "",
        "Direct migrations with the plan's flags and 1 (no PARALLEL, hence no zero-copy), 2, 4 and 8 parallel "
        "connections, next to raw TCP between the two hosts with as many streams (`bench/tcp_raw.py` in the lab's "
        "namespace), in the same run.",
        "",
        _md_table(
            [
                "connections",
                "zero-copy",
                "runs",
                "migration MiB/s p50",
                "min",
                "max",
                "raw TCP MiB/s",
                "raw TCP Gbit/s",
                "downtimes ms",
            ],
            [
                [
                    key,
                    s["zerocopy"],
                    s["throughput_mib_s"]["n"],
                    s["throughput_mib_s"]["p50"],
                    s["throughput_mib_s"]["min"],
                    s["throughput_mib_s"]["max"],
                    (s["raw_tcp_mib_s"] or {}).get("p50"),
                    (s["raw_tcp_gbit_s"] or {}).get("p50"),
                    ", ".join(str(x) for x in s["downtime_ms"]),
                ]
                for key, s in lab["sweep"].items()
            ],
        ),
        "",
        f"The automatic plan ({auto['auto_connections']} connections, zero-copy {auto['auto_zerocopy']}) ran "
        f"{auto['auto_runs']} times (through Ferry: median {auto['auto_throughput_ferry_mib_s']:.0f} MiB/s; direct: "
        f"{auto['auto_throughput_direct_mib_s']:.0f} MiB/s); median **{auto['auto_throughput_mib_s']:.0f} MiB/s**. The "
        f"best of the sweep: {auto['best_connections']} connection(s), {auto['best_throughput_mib_s']} MiB/s. "
        f"Ratio **{auto['ratio']}**.",
        "",
    ]
    alt = lab.get("auto_plan_parallel_auto")
    if alt:
        out += [
            f"For comparison, with the cluster's parallel migrations at `auto` and {alt['policy']} (no zero-copy), "
            f"Ferry's plan for the same VM has {alt['connections'] or 'no'} parallel connections: "
            + " ".join(alt["decisions"]),
            "",
        ]
    out += [
        "![Throughput vs connections](benchmarks-lab-sweep.png)",
        "",
        "### Convergence",
        "",
    ]
    conv = lab["convergence"]
    out += [
        f"A guest of 512 MiB that re-writes {conv['dirty_mib_s']} MiB/s of {conv['fill_mib']} MiB, in a cluster "
        f"whose migration bandwidth is capped at {conv['cap_mbps']} Mbit/s (custom), migrated through Ferry (API -> "
        "worker, so the policy's real schedule runs).",
        "",
        _md_table(
            [
                "policy",
                "bandwidth MiB/s",
                "connections",
                "outcome",
                "wall s",
                "iterations",
                "downtime ms",
                "schedule actions (at s)",
                "guest's heartbeat after",
            ],
            [
                [
                    r["policy"],
                    r["bandwidth_mib_s"],
                    r["connections"],
                    r["state"] + (f" ({r['error']['code']})" if r["error"] else ""),
                    r["wall_s"],
                    r["iterations"],
                    r["downtime_ms"]
                    if r["downtime_ms"] is not None
                    else f"none (expected {r['expected_downtime_ms']} when it ended)",
                    ", ".join(
                        f"{a['name']}{'(' + a['params'][0] + ')' if a['params'] else ''}@{a['at_s']}"
                        for a in r["actions"]
                    ),
                    ("yes" if r.get("heartbeat_after") else "NO (the guest stopped)")
                    + (" (a fresh guest: the previous one had stopped)" if r.get("fresh_guest_before") else ""),
                ]
                for r in (conv["very_large_vms"], conv["minimal_downtime"])
            ],
        ),
        "",
        "![Convergence](benchmarks-convergence.png)",
        "",
        "### Memory",
        "",
        _md_table(
            ["worker", "processes", "peak RSS of its largest process MiB", "peak RSS, all its processes MiB"],
            [
                [name, w["processes"], w["peak_rss_max_mib"], w["peak_rss_sum_mib"]]
                for name, w in lab["worker_memory_after_convergence"].items()
            ],
        ),
        "",
        "Each lab worker is one Celery prefork worker with one pool process (the main process plus the process "
        "that runs the migrations); the peak is VmHWM from /proc after all the lab's migrations.",
        "",
    ]
    return out
