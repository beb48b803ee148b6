"""What every benchmark shares: where things are, the bench database and broker, statistics,
process memory, and the Celery workers the benchmarks start.

Each benchmark module runs in its own process (started by bench/run.py) and writes its results
as JSON; nothing here reads /work/shared or any file outside this repository.
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "var" / "bench"
PY = sys.executable
CELERY = str(Path(sys.executable).parent / "celery")

# A database and a Redis db of the benchmarks' own, so that nothing else on this machine is touched.
DATABASE_URL = os.environ.get("FERRY_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferry_bench")
BROKER_URL = os.environ.get("FERRY_BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every process of a benchmark: bench database, Redis, a queue per host."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        CELERY_BROKER_URL=BROKER_URL,
        FERRY_HOST_QUEUES="true",
        # The lab's sockets under var/ and its peers over qemu+tcp://, for the worker acting as agent.
        FERRY_LIBVIRT_ALLOW_TCP="true",
        FERRY_LIBVIRT_SOCKET_DIRS=str(REPO / "var"),
        FERRY_LOG_LEVEL=os.environ.get("FERRY_BENCH_LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def django_setup() -> None:
    os.environ.update(bench_env())
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    import django

    django.setup()


# ------------------------------------------------------------------------------ database
def _parse_db(url: str) -> dict[str, Any]:
    import dj_database_url

    return dj_database_url.parse(url)


def recreate_database() -> float:
    """Drop and create the bench database, then migrate it; returns the seconds it took."""
    import psycopg

    t = time.monotonic()
    db = _parse_db(DATABASE_URL)
    name = db["NAME"]
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an odd database name: {name!r}")
    conninfo = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "dbname": "postgres",
        "autocommit": True,
    }
    if db.get("PASSWORD"):
        conninfo["password"] = db["PASSWORD"]
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=REPO, env=bench_env(), check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - t


def database_reachable() -> str | None:
    """None when the bench database server answers, else why not."""
    try:
        import psycopg

        db = _parse_db(DATABASE_URL)
        with psycopg.connect(
            host=db.get("HOST") or "127.0.0.1",
            port=int(db.get("PORT") or 5432),
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=5,
        ):
            return None
    except Exception as error:
        return f"PostgreSQL at {DATABASE_URL.rsplit('/', 1)[0]} is not reachable: {error}"


def broker_reachable() -> str | None:
    try:
        import redis

        redis.Redis.from_url(BROKER_URL, socket_timeout=5).ping()
        return None
    except Exception as error:
        return f"Redis at {BROKER_URL} is not reachable: {error}"


# ------------------------------------------------------------------------------ statistics
def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty list."""
    data = sorted(values)
    if not data:
        return math.nan
    k = (len(data) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] if lo == hi else data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), digits),
        "p95": round(percentile(values, 95), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


# ------------------------------------------------------------------------------ processes
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB (empty if it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_memory(pid: int) -> dict[str, Any]:
    """Peak RSS (VmHWM) of every process of a tree, in MiB: the largest one and the sum."""
    per = {p: proc_status(p) for p in process_tree(pid)}
    per = {p: s for p, s in per.items() if s}
    hwm = [s.get("VmHWM", 0) / 1024 for s in per.values()]
    rss = [s.get("VmRSS", 0) / 1024 for s in per.values()]
    return {
        "processes": len(per),
        "peak_rss_max_mib": round(max(hwm, default=0), 1),
        "peak_rss_sum_mib": round(sum(hwm), 1),
        "rss_sum_mib": round(sum(rss), 1),
    }


def self_peak_rss_mib() -> float:
    return round(proc_status(os.getpid()).get("VmHWM", 0) / 1024, 1)


class Worker:
    """A real Celery worker serving some host queues: the agent's code acting for those hosts
    in-process (config.embedded_agent), one process per host as on a hypervisor (see README)."""

    def __init__(self, name: str, queues: list[str], *, concurrency: int = 2, env: dict | None = None):
        self.name = name
        self.queues = queues
        self.log_path = OUT / f"worker-{name}.log"
        OUT.mkdir(parents=True, exist_ok=True)
        env = env or bench_env(FERRY_LOG_LEVEL="INFO")
        self.env = env
        purge(queues, env)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "config.embedded_agent",
                "worker",
                "--queues",
                ",".join(queues),
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@ferry-bench",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def memory(self) -> dict[str, Any]:
        return tree_memory(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def purge(queues: list[str], env: dict) -> None:
    subprocess.run(
        [CELERY, "-A", "config", "purge", "-f", "-Q", ",".join(queues)],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


# ------------------------------------------------------------------------------ results
def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
