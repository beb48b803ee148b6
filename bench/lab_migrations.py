"""Real migrations on the lab: Ferry's overhead, how good its automatic plan is, and convergence.

    python -m bench.lab_migrations --reps 3 --sweep-reps 1 --out var/bench/lab.json

Runs on a lab of its own (LAB_ID=bench, or the LAB_ID of the environment: netns ferrylab-bench,
state in var/lab-bench/), so the end-to-end tests' default lab is never touched. Ferry's side is
the bench database: a cluster "bench-lab" (4.7, Very large VMs) whose two hosts are the lab's
daemons, and one real Celery worker per host serving that host's queue on Redis, as on a
hypervisor.

- Overhead: the same guest migrates back and forth, alternating (F D D F F D ...) a migration
  driven through Ferry (POST /api/vms/{id}/migrate/ -> Redis -> the source's worker -> libvirt ->
  the job's terminal state in the database; wall time = finished_at - the POST's start) with the
  same migration by a direct virDomainMigrateToURI3 call with the flags and params of Ferry's plan
  for that direction (wall time = the call, from opening the connection).
- Automatic plan vs a sweep: direct migrations with 1 (no PARALLEL), 2, 4 and 8 parallel
  connections, otherwise the plan's flags; throughput = data_processed / time_elapsed from the
  completed job's statistics; next to each, raw TCP between the two hosts with as many streams.
- Convergence: a guest that dirties memory faster than the cluster's bandwidth cap lets it
  converge, migrated through Ferry under Very large VMs and under Minimal downtime.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import OUT, PY, REPO, Worker, django_setup, log, summary, write_json

# The lab of the benchmarks (LAB_ID=bench unless the environment names another one).
LAB_ID = os.environ.get("LAB_ID") or "bench"
LAB_SH = REPO / "lab" / "lab.sh"
STATE = REPO / "var" / f"lab-{LAB_ID}" / "state.json"
NAMESPACE = f"ferrylab-{LAB_ID}"
CLUSTER = "bench-lab"
SWEEP = (1, 2, 4, 8)
CONVERGENCE_CAP_MBPS = 200
MIB = 2**20


# ------------------------------------------------------------------------------ the lab
def cannot_run() -> str | None:
    if platform.system() != "Linux":
        return f"the lab needs Linux, this is {platform.system()}"
    if os.geteuid() != 0:
        return "the lab needs root (namespaces, libvirtd)"
    for tool in ("ip", "unshare", "flock", "virsh"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (make setup installs the lab's packages as root)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed (requirements-agent.txt)"
    return None


def lab_sh(*args: str, timeout: float = 600, **env: str) -> str:
    proc = subprocess.run(
        [str(LAB_SH), *args],
        env=dict(os.environ, LAB_ID=LAB_ID, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"LAB_ID={LAB_ID} lab/lab.sh {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def lab_state() -> dict[str, Any]:
    return json.loads(STATE.read_text())


def lab_up() -> bool:
    """Start the bench lab without a guest; True if this call started it."""
    status = subprocess.run(
        [str(LAB_SH), "status"],
        env=dict(os.environ, LAB_ID=LAB_ID),
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if status.returncode == 0:
        return False
    t = time.monotonic()
    lab_sh("up", LAB_NO_GUEST="1")
    log(f"lab: LAB_ID={LAB_ID} lab/lab.sh up took {time.monotonic() - t:.1f} s")
    return True


def start_guest(name: str, *, mem: int, fill: int, vcpus: int, dirty: int | None = None) -> dict[str, Any]:
    t = time.monotonic()
    args = ["guest", "--name", name, "--mem", str(mem), "--fill", str(fill), "--vcpus", str(vcpus), "--replace"]
    if dirty:
        args += ["--dirty", str(dirty)]
    lab_sh(*args, timeout=400)
    guest = lab_state()["guests"][name]
    log(
        f"lab: guest {name} ({mem} MiB, fill {fill}, {vcpus} vCPUs, dirty {dirty or 0}) "
        f"up in {time.monotonic() - t:.1f} s"
    )
    return guest


def last_tick(console_log: str) -> int:
    path = Path(console_log)
    text = path.read_text(errors="replace") if path.exists() else ""
    ticks = [line.rsplit(" ", 1)[-1] for line in text.splitlines() if line.startswith("GUEST: tick ")]
    return int(ticks[-1]) if ticks and ticks[-1].isdigit() else 0


def heartbeat(guest: dict[str, Any], host: str, timeout: float = 10) -> bool:
    """True if the guest prints a new heartbeat on its serial console at host within timeout s."""
    path = guest["console_logs"][host]
    before = last_tick(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if last_tick(path) > before:
            return True
        time.sleep(0.2)
    return False


def raw_tcp(streams: int, seconds: float) -> dict[str, Any]:
    """Raw TCP from hosta's address to hostb's, inside the lab's namespace (bench/tcp_raw.py)."""
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NAMESPACE,
            PY,
            str(REPO / "bench" / "tcp_raw.py"),
            "--streams",
            str(streams),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
        stdin=subprocess.DEVNULL,
    )
    return json.loads(out.stdout)


# ------------------------------------------------------------------------------ Ferry's side
class Ferry:
    """The bench cluster in the database, the API client, and the hosts' workers."""

    def __init__(self, state: dict[str, Any]):
        from django.contrib.auth import get_user_model
        from django.test import Client

        from bench.control_plane import ADMIN, ADMIN_TOKEN
        from core.models import ApiToken
        from core.tokens import key_digest

        users = get_user_model().objects
        admin = users.filter(username=ADMIN).first() or users.create_superuser(
            username=ADMIN, email="", password=uuid.uuid4().hex
        )
        ApiToken.objects.get_or_create(
            key_hash=key_digest(ADMIN_TOKEN), defaults={"user": admin, "name": "bench", "prefix": ADMIN_TOKEN[:8]}
        )
        self.token = ADMIN_TOKEN
        self.client = Client()
        self.state = state
        self.cluster, self.hosts = self._register()
        self.workers: dict[str, Worker] = {}

    def _register(self):
        from clusters.models import VM, Cluster, Host
        from clusters.services import cluster_create, host_create
        from config.embedded_agent import local_agent
        from core.audit import Actor
        from ferry_agent import runner
        from migrations_app.models import MigrationJob
        from policies.models import VERY_LARGE_VMS_ID

        actor = Actor.task("bench")
        old = Cluster.objects.filter(name=CLUSTER).first()
        if old is not None:  # a previous run on this database
            MigrationJob.objects.filter(vm__host__cluster=old).delete()
            VM.objects.filter(host__cluster=old).delete()
            Host.objects.filter(cluster=old).delete()
            old.delete()
        cluster = cluster_create(
            actor=actor,
            data={"name": CLUSTER, "compatibility_version_id": "4.7", "migration_policy_id": VERY_LARGE_VMS_ID},
        )
        hosts = {}
        for name, entry in self.state["hosts"].items():
            host = host_create(
                actor=actor,
                data={
                    # A fresh id, so the queue (host.<id>) is never the default lab's.
                    "id": uuid.uuid4(),
                    "name": f"bench-{name}",
                    "cluster": cluster,
                    "address": entry["address"],
                    "libvirt_uri": entry["libvirt_uri"],
                    "peer_uri": entry["peer_uri"],
                    "status": "up",
                },
            )
            runner.refresh_capabilities(local_agent(str(host.pk)))
            host.refresh_from_db()
            hosts[name] = host
        return cluster, hosts

    def sync(self) -> None:
        from config.embedded_agent import local_agent
        from ferry_agent import runner

        for host in self.hosts.values():
            runner.sync_inventory(local_agent(str(host.pk)))

    def start_workers(self) -> None:
        from core.routing import host_queue

        for name, host in self.hosts.items():
            # One process per host: a warm-up migration then warms the process that runs them all.
            self.workers[name] = Worker(f"lab-{name}", [host_queue(host.pk)], concurrency=1)
        for worker in self.workers.values():
            worker.wait_ready()

    def stop_workers(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def patch_cluster(self, changes: dict[str, Any]) -> None:
        response = self.client.patch(
            f"/api/clusters/{self.cluster.pk}/", changes, content_type="application/json", headers=self.headers
        )
        if response.status_code != 200:
            raise RuntimeError(f"PATCH cluster {changes}: {response.status_code} {response.content[:300]!r}")

    def vm(self, guest: dict[str, Any]):
        from clusters.models import VM

        return VM.objects.select_related("host").get(uuid=guest["uuid"])

    def lab_name(self, host_id) -> str:
        return next(name for name, host in self.hosts.items() if host.pk == host_id)

    def plan(self, vm, destination) -> dict[str, Any]:
        response = self.client.get(
            f"/api/vms/{vm.pk}/migration-plan/?destination_host={destination.pk}", headers=self.headers
        )
        if response.status_code != 200:
            raise RuntimeError(f"migration-plan: {response.status_code} {response.content[:300]!r}")
        return response.json()

    def migrate(self, guest: dict[str, Any], *, timeout: float = 300, timeline: bool = False) -> dict[str, Any]:
        """One migration through Ferry, to the other host; the wall time is finished_at - POST start."""
        from migrations_app.models import TERMINAL_STATES, MigrationJob

        vm = self.vm(guest)
        source = self.lab_name(vm.host_id)
        destination = self.hosts[other(source)]
        points = []
        t0 = time.time()
        response = self.client.post(
            f"/api/vms/{vm.pk}/migrate/",
            {"destination_host": str(destination.pk)},
            content_type="application/json",
            headers=self.headers,
        )
        if response.status_code != 202:
            raise RuntimeError(f"migrate: {response.status_code} {response.content[:300]!r}")
        job_id = response.json()["id"]
        deadline = time.monotonic() + timeout
        cancelled = False
        while True:
            job = MigrationJob.objects.get(pk=job_id)
            if job.state in TERMINAL_STATES:
                break
            if timeline and job.stats:
                points.append(
                    {
                        "t": round(time.time() - t0, 2),
                        "remaining_mib": round((job.stats.get("data_remaining") or 0) / MIB, 1),
                        "iteration": job.stats.get("memory_iteration"),
                        "progress": job.progress,
                    }
                )
            if time.monotonic() > deadline and not cancelled:
                log(f"lab: job {job_id} still {job.state} after {timeout} s: cancelling it")
                self.client.post(f"/api/migrations/{job_id}/cancel/", headers=self.headers)
                cancelled = True
            # Seldom: the wall time comes from finished_at, and a busy poll would take CPU from the
            # migration (two cores for both QEMUs, the guest and the worker).
            time.sleep(0.25)
        stats = job.stats or {}
        run = {
            "kind": "ferry",
            "direction": f"{source}->{other(source)}",
            "state": job.state,
            "error": job.error,
            "wall_s": round(job.finished_at.timestamp() - t0, 3),
            "started_after_s": round(job.started_at.timestamp() - t0, 3) if job.started_at else None,
            "libvirt_call_s": stats.get("seconds"),
            "connections": job.plan["parallel_connections"],
            "zerocopy": job.plan["zerocopy"],
            "flags": job.plan["libvirt"]["flags"],
            "params": job.plan["libvirt"]["params"],
            "decisions": [d["code"] for d in job.plan["decisions"]],
            "decision_messages": [d["message"] for d in job.plan["decisions"]],
            "policy": job.plan["policy"]["name"],
            "actions": [
                {k: a.get(k) for k in ("name", "params", "phase", "iteration", "at_s", "ok")}
                for a in stats.get("actions", [])
            ],
            "timeline": points,
            **_stats(stats, completed=job.state == "succeeded"),
        }
        return run


def other(name: str) -> str:
    return "hostb" if name == "hosta" else "hosta"


def _stats(stats: dict[str, Any], *, completed: bool = True) -> dict[str, Any]:
    """Figures from libvirt's job statistics. While a job runs (or after it was aborted), libvirt's
    "downtime" is QEMU's expected downtime, not a real one: it is reported apart."""
    elapsed, processed = stats.get("time_elapsed"), stats.get("data_processed")
    downtime = stats.get("downtime_ms", stats.get("downtime"))
    return {
        "time_elapsed_ms": elapsed,
        "data_processed_mib": round(processed / MIB, 1) if processed else None,
        "downtime_ms": downtime if completed else None,
        "expected_downtime_ms": None if completed else downtime,
        "iterations": stats.get("memory_iteration"),
        "throughput_mib_s": round(processed / MIB / (elapsed / 1000), 1) if processed and elapsed else None,
    }


def direct_migrate(state: dict[str, Any], guest_uuid: str, source: str, plan: dict[str, Any]) -> dict[str, Any]:
    """The same migration by a bare virDomainMigrateToURI3 call: the plan's flags and params."""
    import libvirt

    flags = 0
    for name in plan["libvirt"]["flags"]:
        flags |= getattr(libvirt, name)
    params = dict(plan["libvirt"]["params"])
    destination = other(source)
    t0 = time.time()
    conn = libvirt.open(state["hosts"][source]["libvirt_uri"])
    try:
        conn.lookupByUUIDString(guest_uuid).migrateToURI3(plan["libvirt"]["destination_uri"], params, flags)
        wall = time.time() - t0
    finally:
        conn.close()
    # With UNDEFINE_SOURCE the source forgets the job; the destination keeps its completed stats.
    dconn = libvirt.open(state["hosts"][destination]["libvirt_uri"])
    try:
        stats = dconn.lookupByUUIDString(guest_uuid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    finally:
        dconn.close()
    return {
        "kind": "direct",
        "direction": f"{source}->{destination}",
        "state": "succeeded",
        "wall_s": round(wall, 3),
        "connections": params.get("parallel.connections"),
        "zerocopy": "VIR_MIGRATE_ZEROCOPY" in plan["libvirt"]["flags"],
        "flags": plan["libvirt"]["flags"],
        "params": params,
        **_stats(stats),
    }


def with_connections(plan: dict[str, Any], connections: int, *, zerocopy: bool = True) -> dict[str, Any]:
    """The plan with another number of parallel connections (1: not parallel, so no zero-copy)."""
    plan = json.loads(json.dumps(plan))
    flags = [f for f in plan["libvirt"]["flags"] if f not in ("VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY")]
    params = {k: v for k, v in plan["libvirt"]["params"].items() if k != "parallel.connections"}
    if connections > 1:
        flags.append("VIR_MIGRATE_PARALLEL")
        params["parallel.connections"] = connections
        if plan["zerocopy"] and zerocopy:
            flags.append("VIR_MIGRATE_ZEROCOPY")
    plan["libvirt"]["flags"], plan["libvirt"]["params"] = flags, params
    plan["parallel_connections"] = connections if connections > 1 else None
    plan["zerocopy"] = "VIR_MIGRATE_ZEROCOPY" in flags
    return plan


# ------------------------------------------------------------------------------ the benchmark
def run(
    *, reps: int, sweep_reps: int, tcp_seconds: float, mem: int, fill: int, vcpus: int, keep_lab: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {"lab_id": LAB_ID, "guest": {"mem_mib": mem, "fill_mib": fill, "vcpus": vcpus}}
    started_lab = lab_up()
    state = lab_state()
    ferry = None
    try:
        guest = start_guest("benchvm", mem=mem, fill=fill, vcpus=vcpus)
        ferry = Ferry(state)
        ferry.sync()
        caps = ferry.hosts["hosta"].capabilities
        result["hosts"] = {name: host.capabilities for name, host in ferry.hosts.items()}
        log(
            f"lab: registered; libvirt {caps.get('libvirt_version')}, QEMU {caps.get('qemu_version')}, "
            f"zero-copy {caps.get('zerocopy_migrations')}, link speed {caps.get('link_speed_mbps')}"
        )
        # What the automatic count would be with parallel "auto" and a policy without zero-copy.
        from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID

        vm = ferry.vm(guest)
        ferry.patch_cluster({"migration_policy": str(MINIMAL_DOWNTIME_ID), "parallel_migrations_policy": "auto"})
        alternative = ferry.plan(vm, ferry.hosts[other(ferry.lab_name(vm.host_id))])
        ferry.patch_cluster({"migration_policy": str(VERY_LARGE_VMS_ID), "parallel_migrations_policy": "disabled"})
        result["auto_plan_parallel_auto"] = {
            "policy": alternative["policy"]["name"],
            "connections": alternative["parallel_connections"],
            "zerocopy": alternative["zerocopy"],
            "decisions": [d["message"] for d in alternative["decisions"]],
        }
        ferry.start_workers()
        # Warm-up, not measured: the first migration each way (worker process, connections, caches).
        for kind in ("ferry", "direct"):
            vm = ferry.vm(guest)
            source = ferry.lab_name(vm.host_id)
            if kind == "ferry":
                entry = ferry.migrate(guest)
            else:
                entry = direct_migrate(state, guest["uuid"], source, ferry.plan(vm, ferry.hosts[other(source)]))
                ferry.sync()
            log(f"lab: warm-up {kind} {entry['direction']}: {entry['state']}, {entry['wall_s']} s")
            result.setdefault("warmup", []).append(entry)

        # Overhead: F D D F F D D F ...: with an even number of each, each kind goes each way equally.
        reps += reps % 2
        order = (["ferry", "direct", "direct", "ferry"] * reps)[: 2 * reps]
        runs = []
        for kind in order:
            vm = ferry.vm(guest)
            source = ferry.lab_name(vm.host_id)
            if kind == "ferry":
                entry = ferry.migrate(guest)
            else:
                plan = ferry.plan(vm, ferry.hosts[other(source)])
                entry = direct_migrate(state, guest["uuid"], source, plan)
                ferry.sync()  # Ferry learns where the VM is now, as its monitoring would
            runs.append(entry)
            log(
                f"lab: {kind:6s} {entry['direction']}: {entry['state']}, {entry['wall_s']} s, "
                f"{entry['throughput_mib_s']} MiB/s, downtime {entry['downtime_ms']} ms"
            )
            if entry["state"] != "succeeded":
                raise RuntimeError(f"a benchmark migration failed: {entry}")
            time.sleep(0.5)
        # The two directions differ (the hosts share two cores with the guest and everything
        # else): the ratio of medians is taken per direction, then averaged over both directions.
        per_direction = {}
        for direction in sorted({r["direction"] for r in runs}):
            walls = {
                kind: [r["wall_s"] for r in runs if r["kind"] == kind and r["direction"] == direction]
                for kind in ("ferry", "direct")
            }
            if walls["ferry"] and walls["direct"]:
                f, d = statistics.median(walls["ferry"]), statistics.median(walls["direct"])
                per_direction[direction] = {
                    "ferry_wall_s_p50": round(f, 3),
                    "direct_wall_s_p50": round(d, 3),
                    "runs": len(walls["ferry"]) + len(walls["direct"]),
                    "ratio": round(f / d, 3),
                    "overhead_ms": round((f - d) * 1000),
                }
        result["overhead"] = {
            "runs": runs,
            "ferry_wall_s": summary([r["wall_s"] for r in runs if r["kind"] == "ferry"], 3),
            "direct_wall_s": summary([r["wall_s"] for r in runs if r["kind"] == "direct"], 3),
            "per_direction": per_direction,
            "ratio": round(statistics.fmean(v["ratio"] for v in per_direction.values()), 3),
            "overhead_ms": round(statistics.fmean(v["overhead_ms"] for v in per_direction.values())),
        }
        # What Ferry adds by itself, measured inside each of its runs, so free of the noise between
        # runs: the wall time outside the libvirt call (dispatch, claim, connections, checking the
        # domain on both hosts, ending the job).
        own = [(r["wall_s"] - r["libvirt_call_s"]) * 1000 for r in runs if r["kind"] == "ferry"]
        direct_p50 = statistics.median([r["wall_s"] for r in runs if r["kind"] == "direct"])
        result["overhead"]["ferry_own_ms"] = summary(own, 1)
        result["overhead"]["ratio_from_own_time"] = round(1 + statistics.median(own) / 1000 / direct_p50, 3)
        auto = next(r for r in runs if r["kind"] == "ferry")
        result["auto_plan"] = {
            k: auto[k]
            for k in ("policy", "connections", "zerocopy", "flags", "params", "decisions", "decision_messages")
        }

        # Sweep of parallel connections by hand, each next to raw TCP with as many streams. With a
        # zero-copy plan, 2 connections without zero-copy too: what zero-copy costs over loopback.
        variants: list[tuple[str, int, bool]] = [(str(n), n, True) for n in SWEEP]
        if auto["zerocopy"]:
            variants.append(("2-no-zerocopy", 2, False))
        sweep: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in variants}
        tcp: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in variants}
        for rep in range(sweep_reps):
            for key, n, zerocopy in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                vm = ferry.vm(guest)
                source = ferry.lab_name(vm.host_id)
                plan = with_connections(ferry.plan(vm, ferry.hosts[other(source)]), n, zerocopy=zerocopy)
                entry = direct_migrate(state, guest["uuid"], source, plan)
                ferry.sync()
                sweep[key].append(entry)
                if zerocopy:
                    tcp[key].append(raw_tcp(n, tcp_seconds))
                log(
                    f"lab: sweep {key} connection(s) {entry['direction']}: {entry['throughput_mib_s']} MiB/s"
                    + (f" (raw TCP {tcp[key][-1]['mib_s']} MiB/s)" if zerocopy else "")
                    + f", downtime {entry['downtime_ms']} ms"
                )
                time.sleep(0.5)
        result["sweep"] = {
            key: {
                "connections": n,
                "zerocopy": entry_zc,
                "throughput_mib_s": summary([r["throughput_mib_s"] for r in sweep[key]], 1),
                "raw_tcp_mib_s": summary([t["mib_s"] for t in tcp[key]], 1) if tcp[key] else None,
                "raw_tcp_gbit_s": summary([t["gbit_s"] for t in tcp[key]], 2) if tcp[key] else None,
                "downtime_ms": [r["downtime_ms"] for r in sweep[key]],
                "runs": sweep[key],
            }
            for key, n, zc in variants
            for entry_zc in [zc and auto["zerocopy"] and n > 1]
        }
        # The automatic plan's throughput: every migration that ran exactly that plan (through
        # Ferry and by the direct calls of the overhead test), measured like the sweep's.
        auto_runs = [r for r in runs if r["connections"] == auto["connections"] and r["zerocopy"] == auto["zerocopy"]]
        auto_tp = round(statistics.median([r["throughput_mib_s"] for r in auto_runs]), 1)
        best = max((str(n) for n in SWEEP), key=lambda key: result["sweep"][key]["throughput_mib_s"]["p50"])
        best_tp = result["sweep"][best]["throughput_mib_s"]["p50"]
        result["auto_vs_best"] = {
            "auto_connections": auto["connections"],
            "auto_zerocopy": auto["zerocopy"],
            "auto_throughput_mib_s": auto_tp,
            "auto_runs": len(auto_runs),
            "auto_throughput_ferry_mib_s": statistics.median(
                [r["throughput_mib_s"] for r in runs if r["kind"] == "ferry"]
            ),
            "auto_throughput_direct_mib_s": statistics.median(
                [r["throughput_mib_s"] for r in runs if r["kind"] == "direct"]
            ),
            "best_connections": int(best),
            "best_throughput_mib_s": best_tp,
            "ratio": round(auto_tp / best_tp, 3),
        }
        result["worker_memory"] = {name: w.memory() for name, w in ferry.workers.items()}
        lab_sh("rm-guest", "benchvm", timeout=120)

        # Convergence: a guest that dirties 32 MiB/s of a 64 MiB working set behind a cap.
        dirty = start_guest("dirtyvm", mem=512, fill=64, vcpus=1, dirty=32)
        ferry.sync()

        convergence = {}
        for label, policy in (("very_large_vms", VERY_LARGE_VMS_ID), ("minimal_downtime", MINIMAL_DOWNTIME_ID)):
            ferry.patch_cluster(
                {
                    "migration_bandwidth": "custom",
                    "migration_bandwidth_custom_mbps": CONVERGENCE_CAP_MBPS,
                    "migration_policy": str(policy),
                }
            )
            # A guest that stopped running dirties nothing and converges trivially: only a guest
            # whose heartbeat goes on is migrated (a frozen one is replaced, and that is reported).
            restarted = False
            if not heartbeat(dirty, ferry.lab_name(ferry.vm(dirty).host_id)):
                log("lab: the dirtying guest has no heartbeat any more: starting a fresh one")
                dirty = start_guest("dirtyvm", mem=512, fill=64, vcpus=1, dirty=32)
                ferry.sync()
                restarted = True
            entry = ferry.migrate(dirty, timeout=240, timeline=True)
            entry["bandwidth_mib_s"] = entry["params"].get("bandwidth")
            entry["fresh_guest_before"] = restarted
            entry["heartbeat_after"] = heartbeat(dirty, ferry.lab_name(ferry.vm(dirty).host_id))
            convergence[label] = entry
            log(
                f"lab: convergence under {entry['policy']}: {entry['state']} {(entry['error'] or {}).get('code')}, "
                f"{entry['wall_s']} s, {entry['iterations']} iterations, downtime {entry['downtime_ms']} ms, "
                f"actions {[(a['name'], a['params']) for a in entry['actions']]}, "
                f"heartbeat after: {entry['heartbeat_after']}"
            )
            time.sleep(1)
        result["convergence"] = {"cap_mbps": CONVERGENCE_CAP_MBPS, "dirty_mib_s": 32, "fill_mib": 64, **convergence}
        result["worker_memory_after_convergence"] = {name: w.memory() for name, w in ferry.workers.items()}
        lab_sh("rm-guest", "dirtyvm", timeout=120)
    finally:
        if ferry is not None:
            ferry.stop_workers()
        if started_lab and not keep_lab:
            with contextlib.suppress(Exception):
                lab_sh("down", timeout=180)
            log(f"lab: LAB_ID={LAB_ID} lab/lab.sh down")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="migrations of each kind for the overhead")
    parser.add_argument("--sweep-reps", type=int, default=1)
    parser.add_argument("--tcp-seconds", type=float, default=2.0)
    parser.add_argument("--mem", type=int, default=2048)
    parser.add_argument("--fill", type=int, default=1536)
    parser.add_argument("--vcpus", type=int, default=2)
    parser.add_argument("--keep-lab", action="store_true", help="leave the bench lab up if this run started it")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    reason = cannot_run()
    if reason:
        write_json(args.out, {"skipped": reason})
        log(f"lab: skipped: {reason}")
        return
    django_setup()
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out,
        run(
            reps=args.reps,
            sweep_reps=args.sweep_reps,
            tcp_seconds=args.tcp_seconds,
            mem=args.mem,
            fill=args.fill,
            vcpus=args.vcpus,
            keep_lab=args.keep_lab,
        ),
    )


if __name__ == "__main__":
    main()
