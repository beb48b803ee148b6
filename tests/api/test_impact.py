"""GET /api/clusters/{id}/impact/: each VM's next migration under proposed settings, grouped."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.models import HostStatus
from migrations_app.resolver import resolve_plan
from migrations_app.selectors import cluster_values, global_defaults, host_values, vm_values
from policies.models import MigrationPolicy
from tests.factories import ClusterFactory, HostFactory, PolicyFactory, VMFactory

pytestmark = pytest.mark.django_db

VERY_LARGE_VMS = "Very large VMs"
CAPABLE = {"zerocopy_migrations": True, "parallel_migrations": True, "link_speed_mbps": 100_000}


@pytest.fixture
def estate():
    """A 4.7 cluster on Minimal downtime: kvm01 capable, kvm02 not reported, kvm03 capable but down;
    VMs on each, some encrypted, one with its own policy."""
    cluster = ClusterFactory(name="prod", compatibility_version_id="4.7", migration_encrypted="false")
    kvm01 = HostFactory(name="kvm01", cluster=cluster, capabilities=CAPABLE)
    kvm02 = HostFactory(name="kvm02", cluster=cluster, capabilities={})
    kvm03 = HostFactory(name="kvm03", cluster=cluster, capabilities=CAPABLE, status=HostStatus.MAINTENANCE)
    own_policy = PolicyFactory(name="Own", migration_compression="true")
    vms = [VMFactory(name=f"a{i}", host=kvm01) for i in range(6)]
    vms += [VMFactory(name=f"b{i}", host=kvm02) for i in range(3)]
    vms += [VMFactory(name=f"c{i}", host=kvm01, migration_encrypted="true") for i in range(2)]
    vms.append(VMFactory(name="d0", host=kvm03, migration_policy=own_policy))
    return cluster, vms


def expected_plan(vm, cluster):
    """The resolver's plan for `vm` to the host Ferry would pick first: another host up, by name."""
    hosts = sorted(cluster.hosts.all(), key=lambda h: h.name)
    destination = next(h for h in hosts if h.pk != vm.host_id and h.status == HostStatus.UP)
    return resolve_plan(
        vm=vm_values(vm),
        cluster=cluster_values(cluster),
        source=host_values(vm.host),
        destination=host_values(destination),
        defaults=global_defaults(),
    )


def test_every_vm_is_in_the_group_of_its_own_resolved_plan(api, estate):
    cluster, vms = estate
    very_large = MigrationPolicy.objects.get(name=VERY_LARGE_VMS)
    response = api.get(
        f"/api/clusters/{cluster.pk}/impact/",
        {"migration_policy": str(very_large.pk), "parallel_migrations_policy": "auto", "migration_compressed": "true"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total_vms"] == len(vms) == sum(g["count"] for g in body["groups"])
    assert body["policy"]["name"] == VERY_LARGE_VMS

    # The proposal, applied to the cluster by hand (and not saved), VM by VM through the resolver.
    cluster.refresh_from_db()
    cluster.migration_policy = very_large
    cluster.parallel_migrations_policy = "auto"
    cluster.migration_compressed = "true"
    group_of = {vm: group for group in body["groups"] for vm in group["vms"]}
    assert len(group_of) == len(vms)
    for vm in vms:
        vm.refresh_from_db()
        plan = expected_plan(vm, cluster)
        group = group_of[str(vm.pk)]
        assert group["zerocopy"] == plan.zerocopy, vm.name
        assert group["parallel"] == (plan.parallel_connections is not None), vm.name
        assert group["codes"] == [d.code for d in plan.decisions], vm.name
    zerocopy = [g for g in body["groups"] if g["zerocopy"]]
    assert [g["count"] for g in zerocopy] == [6]
    assert zerocopy[0]["label"].startswith("6 VMs would use zero-copy, because ")
    not_reported = next(g for g in body["groups"] if "zerocopy_unsupported_host" in g["codes"])
    assert not_reported["count"] == 3 and "their host has not reported zero-copy support" in not_reported["label"]


def test_nothing_is_saved(api, estate):
    cluster, _ = estate
    before = (cluster.migration_policy_id, cluster.version)
    very_large = MigrationPolicy.objects.get(name=VERY_LARGE_VMS)
    assert api.get(f"/api/clusters/{cluster.pk}/impact/", {"migration_policy": str(very_large.pk)}).status_code == 200
    cluster.refresh_from_db()
    assert (cluster.migration_policy_id, cluster.version) == before


def test_without_proposals_it_is_the_clusters_current_settings(api, estate):
    cluster, vms = estate
    body = api.get(f"/api/clusters/{cluster.pk}/impact/").json()
    assert body["policy"]["id"] == str(cluster.migration_policy_id)
    assert not any(g["zerocopy"] for g in body["groups"])
    assert body["total_vms"] == len(vms)


@pytest.mark.parametrize(
    "query",
    [
        {"migration_bandwidth": "fast"},
        {"migration_policy": "not-a-uuid"},
        {"custom_parallel_migrations": "1"},
        {"parallel_migrations_policy": "custom", "custom_parallel_migrations": ""},
        {"compatibility_version": "4.6", "parallel_migrations_policy": "auto"},
        {"name": "renamed"},
    ],
)
def test_invalid_proposals_are_a_400_with_field_messages(api, estate, query):
    cluster, _ = estate
    response = api.get(f"/api/clusters/{cluster.pk}/impact/", query)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert set(query) & set(response.json()) or response.json()


def test_a_policy_not_offered_at_the_proposed_level_is_refused(api, estate):
    cluster, _ = estate
    very_large = MigrationPolicy.objects.get(name=VERY_LARGE_VMS)
    response = api.get(
        f"/api/clusters/{cluster.pk}/impact/", {"compatibility_version": "4.6", "migration_policy": str(very_large.pk)}
    )
    assert response.status_code == 400
    assert "migration_policy" in response.json()


def test_queries_do_not_grow_with_the_number_of_vms(api, estate):
    cluster, _ = estate
    url = f"/api/clusters/{cluster.pk}/impact/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200
        return len(captured)

    few = queries()
    VMFactory.create_batch(30, host=cluster.hosts.first(), migration_policy=PolicyFactory())
    assert queries() == few
