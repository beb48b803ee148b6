"""The control plane at scale: list endpoints, migration plans and list pages over a seeded estate.

    python -m bench.control_plane seed --clusters 1000 --hosts 20000 --vms 200000 --jobs 100000 --audit 1000000
    python -m bench.control_plane measure --label full --requests 30 --out var/bench/cp-full.json

`seed` fills the bench database in bulk, never through the API: clusters, hosts, VMs and jobs with
bulk_create in large batches, the audit entries with one INSERT ... SELECT over generate_series
(a million rows built in Python would take minutes and gigabytes).
`measure` runs in a process of its own, so its peak RSS (VmHWM) is the web process's under the
list benchmark; every request goes through the real URL stack (Django's test Client: middleware,
authentication, DRF, serializers, JSON rendering) against PostgreSQL, with a token like a script.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import OUT, django_setup, log, self_peak_rss_mib, summary, write_json

API_LISTS = [
    "/api/clusters/",
    "/api/hosts/",
    "/api/vms/",
    "/api/migration-policies/",
    "/api/migrations/",
    "/api/audit-log/",
    "/api/cluster-levels/",
]
PAGES = ["/clusters/", "/hosts/", "/vms/", "/migrations/", "/policies/", "/audit/"]
# The VM list's sortable columns (?ordering=), each measured on its own.
VM_SORTS = ["name", "uuid", "status", "host", "cluster", "memory_mib", "vcpus", "migration_policy"]
ADMIN, READER = "bench-admin", "bench-reader"
ADMIN_TOKEN = "benchadmin".ljust(43, "0")  # 43 characters, like Ferry's keys
READER_TOKEN = "benchreader".ljust(43, "0")
LINK_SPEEDS = [10_000, 25_000, 40_000, 100_000]
SEED = 20261126


# ------------------------------------------------------------------------------ seeding
def seed(*, clusters: int, hosts: int, vms: int, jobs: int, audit: int) -> dict[str, Any]:
    """An estate of clusters, hosts (capabilities reported), VMs, finished jobs with real plans,
    and audit entries. Every host's libvirt_uri is a UNIX socket that does not exist and every
    address is in 127.0.0.0/8, so nothing that reads them can reach anything off this machine."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from clusters.models import VM, Cluster, Host
    from core.models import ApiToken, AuditEntry
    from core.roles import READ_ONLY_GROUP, roles_ensure
    from core.tokens import key_digest
    from migrations_app.models import JobState, MigrationJob
    from migrations_app.selectors import migration_plan
    from policies.models import MINIMAL_DOWNTIME_ID, POST_COPY_ID, SUSPEND_WORKLOAD_ID, VERY_LARGE_VMS_ID

    rng = random.Random(SEED)
    t0 = time.monotonic()
    roles_ensure()
    users = get_user_model().objects
    admin = users.create_superuser(username=ADMIN, email="", password=uuid.uuid4().hex)
    reader = users.create_user(username=READER, password=uuid.uuid4().hex)
    reader.groups.add(Group.objects.get(name=READ_ONLY_GROUP))
    for user, key in ((admin, ADMIN_TOKEN), (reader, READER_TOKEN)):
        ApiToken.objects.create(user=user, name="bench", key_hash=key_digest(key), prefix=key[:8])

    level_policies = [
        ("4.7", VERY_LARGE_VMS_ID, "auto_parallel"),
        ("4.8", VERY_LARGE_VMS_ID, "disabled"),
        ("4.7", MINIMAL_DOWNTIME_ID, "auto"),
        ("4.6", MINIMAL_DOWNTIME_ID, "disabled"),
        ("4.5", SUSPEND_WORKLOAD_ID, "disabled"),
        ("4.8", POST_COPY_ID, "custom"),
    ]
    cluster_rows = []
    for i in range(clusters):
        level, policy, parallel = level_policies[i % len(level_policies)]
        custom_bw = i % 4 == 3
        cluster_rows.append(
            Cluster(
                name=f"cluster-{i:03d}",
                description=f"Benchmark cluster {i} in datacenter dc-{i % 7}.",
                compatibility_version_id=level,
                migration_policy_id=policy,
                migration_bandwidth="custom" if custom_bw else "auto",
                migration_bandwidth_custom_mbps=rng.choice([10_000, 40_000, 100_000]) if custom_bw else None,
                parallel_migrations_policy=parallel,
                custom_parallel_migrations=8 if parallel == "custom" else None,
                migration_encrypted="true" if i % 10 == 9 else "inherit",
            )
        )
    Cluster.objects.bulk_create(cluster_rows, batch_size=1000)
    per_cluster = max(1, hosts // max(1, clusters))
    host_rows = []
    now = timezone.now()
    for c, cluster in enumerate(cluster_rows):
        for h in range(per_cluster):
            n = c * per_cluster + h
            if n >= hosts:
                break
            name = f"c{c:03d}-h{h:03d}"
            host_rows.append(
                Host(
                    name=name,
                    cluster=cluster,
                    address=f"127.{100 + c // 250}.{c % 250}.{h + 1}",
                    libvirt_uri=f"qemu:///system?socket=/nonexistent/ferry-bench/{name}/libvirt-sock",
                    status="maintenance" if n % 50 == 49 else "up",
                    capabilities={
                        "libvirt_version": "9.0.0",
                        "qemu_version": "7.2.0",
                        "agent_version": "12.8.0",
                        "zerocopy_migrations": n % 20 != 7,
                        "parallel_migrations": True,
                        "cpu_count": rng.choice([64, 128, 256]),
                        "memory_mib": rng.choice([512, 1024, 2048, 4096]) * 1024,
                        "link_speed_mbps": rng.choice(LINK_SPEEDS),
                    },
                    capabilities_updated_at=now,
                )
            )
    Host.objects.bulk_create(host_rows, batch_size=5000)
    log(f"seeded {len(host_rows)} hosts after {time.monotonic() - t0:.0f} s")
    per_host = max(1, vms // max(1, len(host_rows)))
    vm_rows = []
    for h, host in enumerate(host_rows):
        for v in range(per_host):
            n = h * per_host + v
            if n >= vms:
                break
            large = n % 25 == 0
            vm_rows.append(
                VM(
                    name=f"{host.name}-vm{v:02d}",
                    uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                    host=host,
                    memory_mib=rng.choice([1, 2, 4]) * 1024 * 1024 if large else rng.choice([2048, 4096, 16384]),
                    vcpus=rng.choice([64, 128]) if large else rng.choice([2, 4, 8]),
                    status="up" if n % 40 else "down",
                    migration_policy_id=VERY_LARGE_VMS_ID
                    if large and host.cluster.compatibility_version_id >= "4.7"
                    else None,
                )
            )
    VM.objects.bulk_create(vm_rows, batch_size=5000)
    log(f"seeded {len(vm_rows)} VMs after {time.monotonic() - t0:.0f} s")

    # Finished jobs, each with the plan the resolver really makes for it (a few kB of JSON).
    job_rows, plans = [], {}
    hosts_of = {}
    for host in host_rows:
        hosts_of.setdefault(host.cluster_id, []).append(host)
    for j in range(jobs):
        vm = vm_rows[rng.randrange(len(vm_rows))]
        siblings = [x for x in hosts_of[vm.host.cluster_id] if x.pk != vm.host_id] or [vm.host]
        # A few destinations per cluster: the plans computed stay a few thousand, whatever the jobs.
        destination = siblings[j % min(3, len(siblings))]
        key = (vm.host.cluster_id, vm.migration_policy_id, vm.vcpus, destination.pk)
        if key not in plans:
            plans[key] = migration_plan(vm=vm, destination=destination).to_dict()
        failed = j % 9 == 0
        created = now - timezone.timedelta(minutes=jobs - j)
        job_rows.append(
            MigrationJob(
                vm=vm,
                source_host=vm.host,
                destination_host=destination,
                state=JobState.FAILED if failed else JobState.SUCCEEDED,
                progress=rng.randrange(5, 99) if failed else 100,
                plan=plans[key],
                error={"code": "migration_failed", "message": "operation failed: migration job: unexpectedly failed"}
                if failed
                else None,
                stats={
                    "data_total": vm.memory_mib * 1048576,
                    "data_processed": vm.memory_mib * 1048576,
                    "data_remaining": 0,
                    "memory_iteration": rng.randrange(1, 8),
                    "memory_bps": rng.randrange(10**8, 10**10),
                    "downtime_ms": rng.randrange(50, 1500),
                    "seconds": round(rng.uniform(2, 600), 3),
                    "actions": [],
                },
                created_by=admin,
                created_at=created,
                started_at=created,
                finished_at=created + timezone.timedelta(seconds=30),
            )
        )
        if len(job_rows) >= 10_000:
            MigrationJob.objects.bulk_create(job_rows, batch_size=5000)
            job_rows = []
    MigrationJob.objects.bulk_create(job_rows, batch_size=5000)
    log(f"seeded {jobs} jobs after {time.monotonic() - t0:.0f} s")
    from django.db import connection

    # Audit entries: VM updates, one a second back from now, every third by a task.
    assert (AuditEntry._meta.db_table, VM._meta.db_table) == ("core_auditentry", "clusters_vm")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO core_auditentry
                (at, actor, user_id, action, object_type, object_id, object_repr, before, after, request_id)
            SELECT %s - make_interval(secs => %s - n),
                   CASE WHEN n %% 3 = 0 THEN 'ferry.sync_inventory' ELSE %s END,
                   CASE WHEN n %% 3 = 0 THEN NULL ELSE %s END,
                   'update', 'vm', vm.id::text, vm.name,
                   jsonb_build_object('status', 'up', 'host', vm.host_id::text),
                   jsonb_build_object('status', 'migrating', 'host', vm.host_id::text),
                   ''
            FROM generate_series(0, %s - 1) AS n
            JOIN (SELECT id, name, host_id, row_number() OVER (ORDER BY id) - 1 AS i FROM clusters_vm) AS vm
              ON vm.i = n %% %s
            """,
            [now, audit, ADMIN, admin.pk, audit, max(1, len(vm_rows))],
        )
    log(f"seeded {audit} audit entries after {time.monotonic() - t0:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    counts = {
        "clusters": Cluster.objects.count(),
        "hosts": Host.objects.count(),
        "vms": VM.objects.count(),
        "jobs": MigrationJob.objects.count(),
        "audit": AuditEntry.objects.count(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    log(f"seeded {counts}")
    return counts


# ------------------------------------------------------------------------------ measuring
def _timed(client, url: str, n: int, headers: dict[str, str]) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.content[:300]!r}")
        size = len(response.content)
    return times, size


def _queries(client, url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """The SQL statements one request runs (counted at the database wrapper, whatever DEBUG says)."""
    from django.db import connection

    sql: list[str] = []

    def count(execute, statement, params, many, context):
        sql.append(statement[:200])
        return execute(statement, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return len(sql), sql


def _profile(client, url: str, n: int, headers: dict[str, str], name: str) -> str | None:
    """pyinstrument over n requests of url; the text report goes to var/bench/profile-<name>.txt."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(n):
        client.get(url, headers=headers)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    path = OUT / f"profile-{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path.relative_to(OUT.parents[1]))


def page_client_for_admin():
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN))
    return client


def measure(*, label: str, requests: int, page_requests: int, counts_only: bool, profile: bool) -> dict[str, Any]:
    from django.test import Client

    from clusters.models import VM, Host

    rng = random.Random(SEED + 1)
    client = Client()
    admin = {"Authorization": f"Token {ADMIN_TOKEN}"}
    reader = {"Authorization": f"Token {READER_TOKEN}"}
    warmup = 2
    result: dict[str, Any] = {"label": label, "api": {}, "pages": {}, "plan": None}
    for url in API_LISTS:
        queries, sql = _queries(client, url, admin)
        reader_queries, _ = _queries(client, url, reader)
        entry: dict[str, Any] = {"queries": queries, "queries_read_only_user": reader_queries, "sql": sql}
        if not counts_only:
            _timed(client, url, warmup, admin)
            times, size = _timed(client, url, requests, admin)
            entry.update(summary(times))
            entry["bytes"] = size
        result["api"][url] = entry
        log(f"{label} {url}: {queries} queries" + ("" if counts_only else f", p50 {entry['p50']} ms"))
    if counts_only:
        result["peak_rss_mib"] = self_peak_rss_mib()
        return result

    # A deep page and filtered lists: not goals, but what a big estate's users do.
    some_cluster = Host.objects.order_by("name").values_list("cluster_id", flat=True).first()
    extra = [
        f"/api/vms/?offset={max(0, VM.objects.count() - 100)}",
        f"/api/vms/?cluster={some_cluster}&status=up",
        "/api/hosts/?zerocopy=true&status=up",
        "/api/migrations/?state=failed",
    ]
    result["api_extra"] = {}
    for url in extra:
        queries, _ = _queries(client, url, admin)
        _timed(client, url, warmup, admin)
        times, size = _timed(client, url, max(5, requests // 2), admin)
        result["api_extra"][url] = {"queries": queries, **summary(times), "bytes": size}
        log(f"{label} {url}: {queries} queries, p50 {result['api_extra'][url]['p50']} ms")

    # Each sortable column of the VM list, ascending and descending (the figure is the slower).
    result["api_sorted"] = {}
    for column in VM_SORTS:
        entry = {}
        for direction in ("", "-"):
            url = f"/api/vms/?ordering={direction}{column}"
            queries, _ = _queries(client, url, admin)
            _timed(client, url, warmup, admin)
            times, _ = _timed(client, url, max(5, requests // 2), admin)
            entry[direction or "+"] = {"queries": queries, **summary(times)}
        entry["p50"] = max(entry["+"]["p50"], entry["-"]["p50"])
        result["api_sorted"][column] = entry
        log(f"{label} /api/vms/?ordering=(-){column}: p50 {entry['+']['p50']} / {entry['-']['p50']} ms")

    # Search: a domain UUID, a host's name, an address, part of a VM's name.
    sample = VM.objects.select_related("host").order_by("pk")[VM.objects.count() // 2]
    searches = [
        f"/api/vms/?q={sample.uuid}",
        f"/api/vms/?q={sample.host.name}",
        f"/api/vms/?q={sample.name}",
        f"/api/hosts/?q={sample.host.address}",
        "/api/clusters/?q=dc-3",
        f"/vms/?q={sample.host.name}",
    ]
    result["search"] = {}
    for url in searches:
        search_client = page_client_for_admin() if not url.startswith("/api/") else client
        headers = {} if not url.startswith("/api/") else admin
        queries, _ = _queries(search_client, url, headers)
        _timed(search_client, url, warmup, headers)
        times, size = _timed(search_client, url, max(5, requests // 2), headers)
        result["search"][url] = {"queries": queries, **summary(times), "bytes": size}
        log(f"{label} {url}: {queries} queries, p50 {result['search'][url]['p50']} ms")

    # GET /api/vms/{id}/migration-plan/ for random VMs, to a random other host of their cluster.
    vm_ids = list(VM.objects.filter(status="up").values_list("pk", "host__cluster_id", "host_id"))
    hosts_by_cluster: dict[Any, list] = {}
    for pk, cluster_id in Host.objects.values_list("pk", "cluster_id"):
        hosts_by_cluster.setdefault(cluster_id, []).append(pk)
    urls = []
    for vm_id, cluster_id, host_id in rng.sample(vm_ids, min(len(vm_ids), requests + warmup)):
        destination = rng.choice([h for h in hosts_by_cluster[cluster_id] if h != host_id])
        urls.append(f"/api/vms/{vm_id}/migration-plan/?destination_host={destination}")
    plan_queries, plan_sql = _queries(client, urls[0], admin)
    for url in urls[:warmup]:
        client.get(url, headers=admin)
    times = []
    for url in urls[warmup:]:
        t = time.perf_counter()
        response = client.get(url, headers=admin)
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content[:300]
    result["plan"] = {"queries": plan_queries, "sql": plan_sql, **summary(times)}
    log(f"{label} migration-plan: {plan_queries} queries, p50 {result['plan']['p50']} ms")

    # The browser's list pages (50 rows a page), logged in with a session.
    page_client = page_client_for_admin()
    for url in PAGES:
        try:
            queries, sql = _queries(page_client, url, {})
        except AssertionError as error:
            result["pages"][url] = {"error": str(error)}
            continue
        _timed(page_client, url, 1, {})
        times, size = _timed(page_client, url, page_requests, {})
        result["pages"][url] = {"queries": queries, "sql": sql, **summary(times), "bytes": size}
        log(f"{label} page {url}: {queries} queries, p50 {result['pages'][url]['p50']} ms")

    if profile:
        slowest = max(API_LISTS, key=lambda u: result["api"][u]["p50"])
        result["profiles"] = {
            slowest: _profile(client, slowest, 20, admin, "api-" + slowest.strip("/").replace("/", "-")),
            "migration-plan": _profile(client, urls[-1], 30, admin, "migration-plan"),
        }
    result["peak_rss_mib"] = self_peak_rss_mib()
    log(f"{label}: web process peak RSS {result['peak_rss_mib']} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    for name, default in (
        ("clusters", 1000),
        ("hosts", 20_000),
        ("vms", 200_000),
        ("jobs", 100_000),
        ("audit", 1_000_000),
    ):
        s.add_argument(f"--{name}", type=int, default=default)
    s.add_argument("--out", type=Path)
    m = sub.add_parser("measure")
    m.add_argument("--label", default="full")
    m.add_argument("--requests", type=int, default=30)
    m.add_argument("--page-requests", type=int, default=5)
    m.add_argument("--counts-only", action="store_true")
    m.add_argument("--profile", action="store_true")
    m.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django_setup()
    if args.command == "seed":
        counts = seed(clusters=args.clusters, hosts=args.hosts, vms=args.vms, jobs=args.jobs, audit=args.audit)
        if args.out:
            write_json(args.out, counts)
    else:
        write_json(
            args.out,
            measure(
                label=args.label,
                requests=args.requests,
                page_requests=args.page_requests,
                counts_only=args.counts_only,
                profile=args.profile,
            ),
        )


if __name__ == "__main__":
    main()
