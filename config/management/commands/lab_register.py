"""Register the running lab (var/lab/state.json, written by `lab/lab.sh up`) in Ferry.

A cluster "lab" at 4.7 with Very large VMs, its two hosts with capabilities reported by the real
host tasks (the agent's code, acting in-process as `make run`'s embedded worker does), and the
guest synced from libvirt as a VM. Idempotent.
"""

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clusters.models import Cluster, Host
from clusters.services import cluster_create, host_activate, host_create, host_update
from config.embedded_agent import local_agent
from core.audit import Actor
from ferry_agent import runner
from policies.models import VERY_LARGE_VMS_ID

ACTOR = Actor.task("lab_register")


class Command(BaseCommand):
    help = "Register the lab's hosts and guest in Ferry (after lab/lab.sh up)."

    def add_arguments(self, parser):
        # LAB_ID selects the same independent lab as lab/lab.sh does (var/lab-<id>/).
        lab_dir = f"lab-{os.environ['LAB_ID']}" if os.environ.get("LAB_ID") else "lab"
        parser.add_argument("--state", default=str(settings.BASE_DIR / "var" / lab_dir / "state.json"))
        parser.add_argument("--cluster", default="lab")

    def handle(self, *args, state, cluster, **options):
        path = Path(state)
        if not path.exists():
            raise CommandError(f"{path} does not exist: start the lab first (make lab).")
        lab = json.loads(path.read_text())
        with transaction.atomic():
            lab_cluster = Cluster.objects.filter(name=cluster).first() or cluster_create(
                actor=ACTOR,
                data={
                    "name": cluster,
                    "description": "The two-host libvirt lab of this machine.",
                    "compatibility_version_id": "4.7",
                    "migration_policy_id": VERY_LARGE_VMS_ID,
                },
            )
            hosts = []
            for entry in lab["hosts"].values():
                values = {
                    "cluster": lab_cluster,
                    "address": entry["address"],
                    "libvirt_uri": entry["libvirt_uri"],
                    "peer_uri": entry["peer_uri"],
                }
                host = Host.objects.filter(name=entry["name"]).first()
                if host is None:
                    # The libvirt host UUID as the host's id, so its queue name (host.<id>) is stable.
                    host = host_create(actor=ACTOR, data={"id": entry["host_uuid"], "name": entry["name"], **values})
                else:
                    host = host_update(actor=ACTOR, host=host, data=values)
                if host.status != "up":
                    # Activated here, and its report read right below (no task for its agent).
                    host = host_activate(actor=ACTOR, host=host, ask_agent=False)
                hosts.append(host)
        for host in hosts:
            agent = local_agent(str(host.pk))
            runner.refresh_capabilities(agent)
            counts = runner.sync_inventory(agent)
            host.refresh_from_db()
            caps = host.capabilities
            self.stdout.write(
                f"{host.name}: {host.status}, libvirt {caps.get('libvirt_version')}, QEMU {caps.get('qemu_version')}, "
                f"zero-copy {'yes' if caps.get('zerocopy_migrations') else 'no'}; VMs {counts}"
            )
        self.stdout.write(self.style.SUCCESS(f"Lab registered in cluster '{lab_cluster.name}'."))
