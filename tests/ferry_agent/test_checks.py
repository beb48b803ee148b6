"""The agent checks every value Ferry sends before libvirt sees it (ferry_agent.checks).

Plans Ferry's resolver really makes pass; anything outside them is refused with a reason: a URI
off this machine's allow-list, a flag or a parameter no plan has, a malformed value.
"""

import copy

import pytest

from ferry_agent.checks import Refused, UriPolicy, check_order
from policies.models import VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory, HostFactory, JobFactory, VMFactory

VM_UUID = "1c1d4f3a-be52-4aa4-ba53-c1c5db5f51ca"
LAB = UriPolicy(allow_tcp=True, socket_dirs=("/srv/lab",))


def job(plan=None, **changes):
    order = {
        "id": "6b0f5a4e-0000-4000-8000-000000000001",
        "vm_uuid": VM_UUID,
        "source_uri": "qemu:///system",
        "destination_monitor_uri": "qemu+tls://hostb.example/system",
        "plan": plan
        or {
            "libvirt": {
                "destination_uri": "qemu+tls://hostb.example/system",
                "flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"],
                "params": {"migrate_uri": "tcp://10.0.0.2", "parallel.connections": 4, "bandwidth": 1250},
            },
            "convergence_schedule": {"init": [], "stalling": []},
        },
    }
    return order | changes


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cluster_changes",
    [
        {},
        {"migration_policy_id": VERY_LARGE_VMS_ID},  # zero-copy, parallel
        {"migration_encrypted": "true"},
        {"migration_compressed": "true", "migration_auto_converge": "true"},
        {"migration_bandwidth": "custom", "migration_bandwidth_custom_mbps": 10000},
        {"parallel_migrations_policy": "custom", "custom_parallel_migrations": 8},
    ],
)
def test_plans_that_ferry_makes_pass_the_agents_checks(cluster_changes):
    cluster = ClusterFactory(**cluster_changes)
    source, destination = HostFactory(cluster=cluster), HostFactory(cluster=cluster)
    migration = JobFactory(vm=VMFactory(host=source), destination_host=destination)
    order = check_order(
        job(migration.plan, source_uri=source.libvirt_uri, destination_monitor_uri=destination.libvirt_uri),
        UriPolicy(),
    )
    assert order.flags == migration.plan["libvirt"]["flags"]
    assert order.params == migration.plan["libvirt"]["params"]
    assert order.destination_uri == destination.libvirt_uri
    if cluster_changes.get("migration_policy_id") == VERY_LARGE_VMS_ID:
        assert "VIR_MIGRATE_ZEROCOPY" in order.flags


def test_a_zero_copy_plan_passes_unchanged():
    order = check_order(job(), UriPolicy())
    assert order.vm_uuid == VM_UUID
    assert order.params == {"migrate_uri": "tcp://10.0.0.2", "parallel.connections": 4, "bandwidth": 1250}


@pytest.mark.parametrize(
    ("where", "uri"),
    [
        ("source_uri", "qemu+ssh://root@hosta/system?command=/bin/sh"),
        ("source_uri", "qemu+ext:///system?command=/tmp/x"),
        ("source_uri", "qemu:///system?socket=/etc/shadow"),
        ("destination_monitor_uri", "qemu+tcp://hostb/system"),
        ("destination_uri", "qemu+tcp://hostb/system"),
        ("destination_uri", "qemu+tls://hostb/system?pkipath=/root"),
        ("destination_uri", "qemu:///session"),
    ],
)
def test_a_uri_off_this_machines_allow_list_is_refused(where, uri):
    order = job()
    if where == "destination_uri":
        order["plan"]["libvirt"]["destination_uri"] = uri
    else:
        order[where] = uri
    with pytest.raises(Refused, match="refused"):
        check_order(order, UriPolicy())


def test_tcp_and_socket_uris_pass_only_where_the_agent_allows_them():
    order = job(source_uri="qemu:///system?socket=/srv/lab/hosta/libvirt-sock")
    order["plan"]["libvirt"]["destination_uri"] = "qemu+tcp://127.0.0.3/system"
    assert check_order(order, LAB).source_uri == "qemu:///system?socket=/srv/lab/hosta/libvirt-sock"
    with pytest.raises(Refused):
        check_order(order, UriPolicy(allow_tcp=True))  # no socket directory here
    with pytest.raises(Refused):
        check_order(order, UriPolicy(socket_dirs=("/srv/lab",)))  # no tcp here
    order["source_uri"] = "qemu:///system?socket=/srv/lab/../etc/libvirt-sock"
    with pytest.raises(Refused):
        check_order(order, LAB)


@pytest.mark.parametrize(
    "libvirt_changes",
    [
        {"flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_UNSAFE"]},
        {"flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_NON_SHARED_DISK"]},
        {"flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_TUNNELLED"]},
        {"flags": "VIR_MIGRATE_LIVE"},
        {"flags": [1]},
        {"params": {"destination_xml": "<domain/>"}},
        {"params": {"persistent_xml": "<domain/>"}},
        {"params": {"migrate_uri": "unix:///tmp/sock"}},
        {"params": {"migrate_uri": "tcp://user@10.0.0.2"}},
        {"params": {"tls.destination": "host name with spaces"}},
        {"params": {"parallel.connections": 1}},
        {"params": {"parallel.connections": 256}},
        {"params": {"parallel.connections": True}},
        {"params": {"bandwidth": 0}},
        {"params": {"bandwidth": "1000"}},
        {"params": []},
    ],
)
def test_a_flag_or_parameter_no_plan_has_is_refused(libvirt_changes):
    order = job()
    order["plan"]["libvirt"].update(copy.deepcopy(libvirt_changes))
    with pytest.raises(Refused):
        check_order(order, UriPolicy())


@pytest.mark.parametrize(
    "changes",
    [
        {"vm_uuid": "labvm"},
        {"vm_uuid": None},
        {"plan": {"convergence_schedule": {}}},
        {"plan": {"libvirt": {}, "convergence_schedule": []}},
    ],
)
def test_a_malformed_job_is_refused(changes):
    with pytest.raises(Refused):
        check_order(job(**changes), UriPolicy())
