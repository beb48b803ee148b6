"""`?ordering=<field>` / `-<field>` on every API list, ties broken by id; unknown fields are a 400."""

from __future__ import annotations

import pytest

from tests.factories import ClusterFactory, HostFactory, JobFactory, VMFactory

pytestmark = pytest.mark.django_db

LISTS = {
    "/api/cluster-levels/": ["level", "parallel_migrations_supported"],
    "/api/clusters/": ["name", "compatibility_version", "migration_policy", "migration_bandwidth"],
    "/api/hosts/": ["name", "cluster", "address", "status", "capabilities_updated_at"],
    "/api/vms/": ["name", "uuid", "status", "host", "cluster", "memory_mib", "vcpus", "migration_policy"],
    "/api/migration-policies/": ["name", "builtin", "max_migrations", "zerocopy"],
    "/api/migrations/": ["created_at", "started_at", "finished_at", "state", "progress", "vm", "source_host"],
    "/api/audit-log/": ["at", "actor", "action", "object_type"],
}


@pytest.fixture
def estate():
    clusters = [ClusterFactory(name=name) for name in ("b-cluster", "a-cluster")]
    hosts = [HostFactory(name=f"kvm{i}", cluster=clusters[i % 2], address=f"10.0.0.{9 - i}") for i in range(4)]
    vms = [VMFactory(name=f"vm{i}", host=hosts[i % 4], memory_mib=1024 * (i % 3 + 1), vcpus=8 - i) for i in range(8)]
    JobFactory(vm=vms[0], source_host=hosts[0], destination_host=hosts[2])
    JobFactory(vm=vms[1], source_host=hosts[1], destination_host=hosts[3])
    return vms


def rows(api, url, ordering):
    response = api.get(url, {"ordering": ordering, "limit": 1000})
    assert response.status_code == 200, (url, ordering, response.content)
    return response.json()["results"]


def test_vms_sort_by_memory_with_id_breaking_the_ties_in_the_same_direction(api, estate):
    for ordering, reverse in (("memory_mib", False), ("-memory_mib", True)):
        got = [(vm["memory_mib"], vm["id"]) for vm in rows(api, "/api/vms/", ordering)]
        expected = sorted(got, key=lambda pair: pair[0], reverse=reverse)
        assert [memory for memory, _ in got] == [memory for memory, _ in expected]
        for memory in {m for m, _ in got}:
            ids = [vm_id for m, vm_id in got if m == memory]
            assert ids == sorted(ids, reverse=reverse), "ties are not ordered by id"


def test_vms_sort_by_their_hosts_name(api, estate):
    names = {vm["host"]: None for vm in rows(api, "/api/vms/", "host")}
    hosts = {host["id"]: host["name"] for host in rows(api, "/api/hosts/", "name")}
    ordered = [hosts[host_id] for host_id in names]
    assert ordered == sorted(ordered)


@pytest.mark.parametrize("url", LISTS)
def test_every_list_sorts_both_ways_on_each_of_its_columns(api, estate, url):
    for field in LISTS[url]:
        forward = [row.get("id", row.get("level")) for row in rows(api, url, field)]
        backward = [row.get("id", row.get("level")) for row in rows(api, url, f"-{field}")]
        assert sorted(forward, key=str) == sorted(backward, key=str), (url, field)


@pytest.mark.parametrize("url", LISTS)
def test_an_unknown_ordering_is_a_400_naming_the_parameter(api, url):
    response = api.get(url, {"ordering": "password"})
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_names_sort_alphabetically(api, estate):
    assert [c["name"] for c in rows(api, "/api/clusters/", "name")] == ["a-cluster", "b-cluster"]
    assert [c["name"] for c in rows(api, "/api/clusters/", "-name")] == ["b-cluster", "a-cluster"]
    addresses = [h["address"] for h in rows(api, "/api/hosts/", "-address")]
    assert addresses == sorted(addresses, reverse=True)


def test_vms_sort_by_their_policys_name_with_vms_without_one_last(api, estate):
    from policies.models import MigrationPolicy
    from tests.factories import PolicyFactory

    zeta, alpha = PolicyFactory(name="Zeta custom"), PolicyFactory(name="Alpha custom")
    for vm, policy in zip(estate, [zeta, alpha, zeta, alpha], strict=False):
        vm.migration_policy = policy
        vm.save()
    names = {str(policy.pk): policy.name for policy in MigrationPolicy.objects.all()}

    def key(row):
        return names.get(row["migration_policy"])

    forward = rows(api, "/api/vms/", "migration_policy")
    assert [key(row) for row in forward] == ["Alpha custom"] * 2 + ["Zeta custom"] * 2 + [None] * 4
    backward = rows(api, "/api/vms/", "-migration_policy")
    assert [key(row) for row in backward] == [None] * 4 + ["Zeta custom"] * 2 + ["Alpha custom"] * 2
    for listed, reverse in ((forward, False), (backward, True)):
        for name in ("Alpha custom", "Zeta custom", None):
            ids = [row["id"] for row in listed if key(row) == name]
            assert ids == sorted(ids, reverse=reverse)
