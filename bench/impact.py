#!/usr/bin/env python3
"""The impact preview of a policy change on a cluster of 2,000 VMs, through the API.

    bench/impact.py [--vms 2000] [--requests 20] [--out var/bench/impact.json]

Adds a cluster of its own (20 hosts, some not reporting zero-copy; VMs with and without their own
encryption) to the bench database (migrated, e.g. by bench/run.py), asks
GET /api/clusters/{id}/impact/?migration_policy=<Very large VMs>&... as an admin with a token, and
prints `FIGURE impact_p50_ms_2000_vms <p50> ms`. The goal is at most 300 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402

HOSTS = 20
VERY_LARGE_VMS_NAME = "Very large VMs"


def seed(vms: int) -> str:
    from clusters.models import VM, Cluster, Host
    from policies.models import MigrationPolicy

    cluster = Cluster.objects.create(name=f"impact-{uuid.uuid4().hex[:8]}", compatibility_version_id="4.7")
    capable = {"zerocopy_migrations": True, "parallel_migrations": True, "link_speed_mbps": 100_000}
    hosts = Host.objects.bulk_create(
        Host(
            name=f"{cluster.name}-kvm{i:02}",
            cluster=cluster,
            address=f"10.77.{i // 250}.{i % 250 + 1}",
            libvirt_uri="qemu:///system",
            capabilities=capable if i % 5 else {},
        )
        for i in range(HOSTS)
    )
    own_policy = MigrationPolicy.objects.exclude(name=VERY_LARGE_VMS_NAME).first()
    VM.objects.bulk_create(
        VM(
            name=f"{cluster.name}-vm{i:05}",
            uuid=uuid.uuid4(),
            host=hosts[i % HOSTS],
            memory_mib=4096,
            vcpus=8,
            migration_encrypted="true" if i % 17 == 0 else "inherit",
            migration_policy=own_policy if i % 23 == 0 else None,
        )
        for i in range(vms)
    )
    return str(cluster.pk)


def measure(cluster_id: str, requests: int) -> dict:
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from core.audit import Actor
    from core.tokens import token_create
    from policies.models import MigrationPolicy

    user, _ = User.objects.get_or_create(username="bench-impact", defaults={"is_superuser": True})
    user.api_tokens.filter(name="bench").delete()
    key = token_create(actor=Actor.of(user), user=user, name="bench").key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    query = {
        "migration_policy": str(MigrationPolicy.objects.get(name=VERY_LARGE_VMS_NAME).pk),
        "parallel_migrations_policy": "auto",
        "migration_encrypted": "false",
    }
    url = f"/api/clusters/{cluster_id}/impact/"
    first = client.get(url, query, HTTP_HOST="localhost")
    if first.status_code != 200:
        raise SystemExit(f"impact answered {first.status_code}: {first.content[:500]!r}")
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        response = client.get(url, query, HTTP_HOST="localhost")
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200
    body = first.json()
    return {
        "ms": common.summary(times),
        "total_vms": body["total_vms"],
        "groups": [{"label": g["label"], "count": g["count"]} for g in body["groups"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    common.django_setup()
    result = measure(seed(args.vms), args.requests)
    result["vms"] = args.vms
    if args.out:
        common.write_json(args.out, result)
    print(f"impact preview of {result['total_vms']} VMs:")
    for group in result["groups"]:
        print(f"  {group['label']}")
    print(f"  p50 {result['ms']['p50']} ms, p95 {result['ms'].get('p95')} ms over {args.requests} requests")
    print(f"FIGURE impact_p50_ms_{args.vms}_vms {result['ms']['p50']} ms")


if __name__ == "__main__":
    main()
