"""A VM's memtune hard limit and its host's locked-memory rights: only the host's agent reports
them, users read them, and the plan turns zero-copy off where the limit would make it fail."""

from __future__ import annotations

import uuid

import pytest

from clusters.models import VM, Cluster, Host
from policies.models import VERY_LARGE_VMS_ID
from tests.api.test_agent_api import CAPABILITIES, agent_client, domain, everything
from tests.factories import ClusterFactory, HostFactory, VMFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return HostFactory(cluster=ClusterFactory(), name="hv-memtune")


def test_an_inventory_records_each_domains_hard_limit_and_null_when_it_declares_none(host):
    limited, unlimited = uuid.uuid4(), uuid.uuid4()
    body = {
        "domains": [
            {**domain(limited, "limited"), "memtune_hard_limit_mib": 8},
            {**domain(unlimited, "unlimited"), "memtune_hard_limit_mib": None},
        ]
    }
    response = agent_client(host).post("/api/agent/inventory/", body, format="json")
    assert response.status_code == 200, response.content
    assert VM.objects.get(uuid=limited).memtune_hard_limit_mib == 8
    assert VM.objects.get(uuid=unlimited).memtune_hard_limit_mib is None


def test_a_later_inventory_changes_or_clears_the_limit_and_one_without_the_key_leaves_it(host):
    vm = VMFactory(host=host, name="guest")
    agent = agent_client(host)
    for reported, stored in ((2048, 2048), (None, None), (4096, 4096)):
        body = {"domains": [{**domain(vm.uuid, "guest"), "memtune_hard_limit_mib": reported}]}
        assert agent.post("/api/agent/inventory/", body, format="json").status_code == 200
        assert VM.objects.get(pk=vm.pk).memtune_hard_limit_mib == stored
    # An agent that does not read the limit says nothing about it: the stored one stays.
    response = agent.post("/api/agent/inventory/", {"domains": [domain(vm.uuid, "guest")]}, format="json")
    assert response.status_code == 200
    assert VM.objects.get(pk=vm.pk).memtune_hard_limit_mib == 4096


@pytest.mark.parametrize("limit", [-1, "8", 8.5, True, 2**40 + 1, [8], {"mib": 8}])
def test_a_malformed_hard_limit_refuses_the_whole_inventory(host, limit):
    VMFactory(host=host)
    agent = agent_client(host)
    before = everything()
    body = {"domains": [{**domain(uuid.UUID(int=7)), "memtune_hard_limit_mib": limit}]}
    response = agent.post("/api/agent/inventory/", body, format="json")
    assert response.status_code == 400, response.content
    assert "memtune_hard_limit_mib" in response.json()["detail"]
    assert everything() == before


@pytest.mark.parametrize("enforced", [True, False, None])
def test_a_capabilities_report_carries_whether_locked_memory_is_enforced(host, enforced):
    body = {"capabilities": {**CAPABILITIES, "memlock_enforced": enforced}}
    response = agent_client(host).post("/api/agent/capabilities/", body, format="json")
    assert response.status_code == 200, response.content
    assert Host.objects.get(pk=host.pk).capabilities["memlock_enforced"] is enforced


@pytest.mark.parametrize("enforced", ["yes", 1, 0, [], {}])
def test_a_memlock_enforced_that_is_not_a_boolean_is_400_and_changes_nothing(host, enforced):
    agent = agent_client(host)
    before = everything()
    body = {"capabilities": {**CAPABILITIES, "memlock_enforced": enforced}}
    response = agent.post("/api/agent/capabilities/", body, format="json")
    assert response.status_code == 400, response.content
    assert everything() == before


def test_the_api_shows_the_limit_and_refuses_to_change_it(api, estate):
    VM.objects.filter(pk=estate.vm.pk).update(memtune_hard_limit_mib=8)
    url = f"/api/vms/{estate.vm.pk}/"
    assert api.get(url).json()["memtune_hard_limit_mib"] == 8
    response = api.patch(url, {"memtune_hard_limit_mib": 999_999, "vcpus": 2}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["memtune_hard_limit_mib"] == 8
    assert VM.objects.get(pk=estate.vm.pk).memtune_hard_limit_mib == 8


def test_the_vm_page_shows_the_limit_or_that_none_is_declared(admin_client, estate):
    page = admin_client.get(f"/vms/{estate.vm.pk}/").content.decode()
    assert 'id="memtune-hard-limit"><span class="muted">None declared' in page
    VM.objects.filter(pk=estate.vm.pk).update(memtune_hard_limit_mib=8)
    page = admin_client.get(f"/vms/{estate.vm.pk}/").content.decode()
    assert 'id="memtune-hard-limit">8.0 MiB' in page


def test_admin_shows_the_limit_read_only(admin_client, estate):
    VM.objects.filter(pk=estate.vm.pk).update(memtune_hard_limit_mib=8)
    page = admin_client.get(f"/admin/clusters/vm/{estate.vm.pk}/change/").content.decode()
    assert "memtune hard limit (MiB)" in page.lower() or "Memtune hard limit (MiB)" in page
    assert 'name="memtune_hard_limit_mib"' not in page


def _zerocopy_estate(estate, *, enforced):
    Cluster.objects.filter(pk=estate.cluster.pk).update(
        migration_policy_id=VERY_LARGE_VMS_ID, parallel_migrations_policy="auto_parallel"
    )
    capabilities = dict(estate.source.capabilities)
    if enforced is not None:
        capabilities["memlock_enforced"] = enforced
    Host.objects.filter(pk=estate.source.pk).update(capabilities=capabilities)
    VM.objects.filter(pk=estate.vm.pk).update(memory_mib=512, memtune_hard_limit_mib=8)


def _plan(api, estate) -> dict:
    url = f"/api/vms/{estate.vm.pk}/migration-plan/"
    response = api.get(url, {"destination_host": str(estate.destination.pk)})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("enforced", [True, None])
def test_a_plan_from_a_host_that_enforces_locked_memory_or_has_not_said_drops_zerocopy(api, estate, enforced):
    _zerocopy_estate(estate, enforced=enforced)
    plan = _plan(api, estate)
    assert plan["zerocopy"] is False
    assert "VIR_MIGRATE_PARALLEL" in plan["libvirt"]["flags"]
    decision = next(d for d in plan["decisions"] if d["code"] == "zerocopy_memtune_limit")
    assert "The VM db-1 declares a memory hard limit (memtune) of 8 MiB" in decision["message"]
    assert "raise it to at least 1536 MiB" in decision["message"]


def test_a_plan_from_a_host_that_does_not_enforce_locked_memory_keeps_zerocopy(api, estate):
    _zerocopy_estate(estate, enforced=False)
    plan = _plan(api, estate)
    assert plan["zerocopy"] is True
    codes = [d["code"] for d in plan["decisions"]]
    assert "memtune_limit_not_enforced" in codes and "zerocopy_memtune_limit" not in codes


def test_the_cluster_impact_counts_a_limited_vm_apart(api, estate):
    _zerocopy_estate(estate, enforced=True)
    body = api.get(f"/api/clusters/{estate.cluster.pk}/impact/").json()
    limited = next(g for g in body["groups"] if str(estate.vm.pk) in g["vms"])
    assert "zerocopy_memtune_limit" in limited["codes"] and limited["zerocopy"] is False
    assert any(g["zerocopy"] for g in body["groups"])  # the others keep zero-copy


@pytest.mark.parametrize(
    ("enforced", "shown"),
    [
        (True, 'id="memlock">Enforced'),
        (False, 'id="memlock">Not enforced'),
        (None, 'id="memlock"><span class="muted">Not reported'),
    ],
)
def test_the_host_page_says_whether_locked_memory_is_enforced(admin_client, estate, enforced, shown):
    Host.objects.filter(pk=estate.source.pk).update(
        capabilities=dict(estate.source.capabilities, memlock_enforced=enforced)
    )
    page = admin_client.get(f"/hosts/{estate.source.pk}/").content.decode()
    assert shown in page
