"""The generic resource tests (tests/api/base.py) for clusters, hosts, VMs and custom policies."""

import uuid

import pytest

from clusters.models import VM, Cluster, Host
from policies.models import MigrationPolicy
from tests.api.base import ResourceTests
from tests.factories import ClusterFactory, HostFactory, PolicyFactory, VMFactory

pytestmark = pytest.mark.django_db


class TestClusters(ResourceTests):
    url = "/api/clusters/"
    model = Cluster
    object_type = "cluster"
    filter_param = "compatibility_version"

    def make(self, estate):
        return ClusterFactory(name="staging")

    def create_data(self, estate):
        return {"name": "new-cluster", "compatibility_version": "4.8", "migration_encrypted": "true"}

    def change(self):
        return {"description": "Staging machines", "error_handling": "do_not_migrate"}

    def other_change(self):
        return {"description": "Staging", "error_handling": "do_not_migrate"}

    def wrong_type(self):
        return {"custom_parallel_migrations": "8"}, "custom_parallel_migrations"


class TestHosts(ResourceTests):
    url = "/api/hosts/"
    model = Host
    object_type = "host"
    filter_param = "status"

    def make(self, estate):
        return HostFactory(cluster=estate.cluster, name="hv-c")

    def create_data(self, estate):
        return {
            "name": "hv-new",
            "cluster": str(estate.cluster.pk),
            "address": "2001:db8::7",
            "libvirt_uri": "qemu+tls://hv-new.example/system",
            "status": "maintenance",
        }

    def change(self):
        return {"address": "hv-c.migration.example", "peer_uri": "qemu+tls://hv-c.migration.example/system"}

    def other_change(self):
        return {"address": "10.20.30.40", "peer_uri": "qemu+tls://hv-c.migration.example/system"}

    def wrong_type(self):
        return {"address": 10}, "address"


class TestVMs(ResourceTests):
    url = "/api/vms/"
    model = VM
    object_type = "vm"
    filter_param = "cluster"

    def make(self, estate):
        return VMFactory(host=estate.source, name="app-1")

    def create_data(self, estate):
        return {
            "name": "vm-new",
            "uuid": str(uuid.uuid4()),
            "host": str(estate.source.pk),
            "memory_mib": 2048,
            "vcpus": 2,
        }

    def change(self):
        return {"vcpus": 16, "migration_encrypted": "true"}

    def other_change(self):
        return {"vcpus": 32, "migration_encrypted": "false"}

    def wrong_type(self):
        return {"vcpus": True}, "vcpus"


class TestCustomPolicies(ResourceTests):
    url = "/api/migration-policies/"
    model = MigrationPolicy
    object_type = "migrationpolicy"
    filter_param = "zerocopy"

    def make(self, estate):
        return PolicyFactory(name="Patient")

    def create_data(self, estate):
        return {
            "name": "Large and patient",
            "max_migrations": 1,
            "zerocopy": True,
            "convergence": {
                "initial": 500,
                "stalling": [{"limit": 3, "action": {"name": "setDowntime", "params": ["800"]}}],
                "last": [{"name": "abort", "params": []}],
            },
        }

    def change(self):
        return {"description": "Waits longer", "max_migrations": 3}

    def other_change(self):
        return {"description": "Waits much longer", "max_migrations": 3}

    def wrong_type(self):
        return {"max_migrations": 2.5}, "max_migrations"
