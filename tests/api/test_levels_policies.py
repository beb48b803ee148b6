"""Cluster levels and migration policies through the API."""

import pytest

from clusters.models import ClusterLevel
from core.models import AuditEntry
from policies.models import LEGACY_ID, MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID, MigrationPolicy
from tests.factories import ClusterFactory, HostFactory, PolicyFactory, VMFactory

pytestmark = pytest.mark.django_db


def names(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {policy["name"] for policy in response.json()["results"]}


def test_levels_are_listed_and_looked_up_by_their_key(api):
    listed = api.get("/api/cluster-levels/").json()["results"]
    assert [level["level"] for level in listed] == ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"]
    assert api.get("/api/cluster-levels/4.7/").json() == {"level": "4.7", "parallel_migrations_supported": True}
    assert api.get("/api/cluster-levels/9.9/").status_code == 404


def test_a_level_can_lose_parallel_migrations_while_its_clusters_keep_very_large_vms(api, level):
    cluster = ClusterFactory(compatibility_version=level("4.7"), migration_policy_id=VERY_LARGE_VMS_ID)
    source = HostFactory(cluster=cluster)
    destination = HostFactory(cluster=cluster)
    vm = VMFactory(host=source)

    response = api.patch("/api/cluster-levels/4.7/", {"parallel_migrations_supported": False}, format="json")

    assert response.status_code == 200
    assert response.json() == {"level": "4.7", "parallel_migrations_supported": False}
    entry = AuditEntry.objects.get(object_type="clusterlevel")
    assert (entry.before, entry.after) == (
        {"parallel_migrations_supported": True},
        {"parallel_migrations_supported": False},
    )
    cluster.refresh_from_db()
    assert cluster.migration_policy_id == VERY_LARGE_VMS_ID
    plan = api.get(f"/api/vms/{vm.pk}/migration-plan/", {"destination_host": str(destination.pk)}).json()
    assert "zerocopy_unsupported_level" in {decision["code"] for decision in plan["decisions"]}
    assert plan["zerocopy"] is False


def test_only_parallel_migrations_supported_changes_on_a_level(api):
    response = api.put(
        "/api/cluster-levels/4.2/", {"level": "9.9", "parallel_migrations_supported": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"level": "4.2", "parallel_migrations_supported": True}
    assert not ClusterLevel.objects.filter(level="9.9").exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_built_in_policies_are_read_only(api, method):
    policy = MigrationPolicy.objects.get(pk=MINIMAL_DOWNTIME_ID)
    response = getattr(api, method)(f"/api/migration-policies/{policy.pk}/", {"name": "Mine now"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    stored = MigrationPolicy.objects.get(pk=MINIMAL_DOWNTIME_ID)
    assert (stored.name, stored.version) == ("Minimal downtime", policy.version)
    assert not AuditEntry.objects.exists()


def test_the_level_filter_lists_only_the_policies_offered_there(api):
    assert names(api.get("/api/migration-policies/", {"compatibility_version": "4.2"})) == {
        "Legacy",
        "Minimal downtime",
        "Suspend workload if needed",
        "Post-copy migration",
    }
    at_46 = names(api.get("/api/migration-policies/", {"compatibility_version": "4.6"}))
    assert "Very large VMs" not in at_46 and "Legacy" not in at_46
    assert "Very large VMs" in names(api.get("/api/migration-policies/", {"compatibility_version": "4.8"}))


def test_the_cluster_filter_uses_that_clusters_level(api, level):
    old = ClusterFactory(compatibility_version=level("4.5"))
    new = ClusterFactory(compatibility_version=level("4.8"))
    PolicyFactory(name="Zero-copy custom", zerocopy=True)
    assert not {"Very large VMs", "Zero-copy custom"} & names(api.get("/api/migration-policies/", {"cluster": old.pk}))
    assert {"Very large VMs", "Zero-copy custom"} <= names(api.get("/api/migration-policies/", {"cluster": new.pk}))


@pytest.mark.parametrize(
    "query",
    [
        {"cluster": "00000000-0000-4000-8000-000000000000"},
        {"cluster": "not-a-uuid"},
        {"compatibility_version": "3.9"},
        {"builtin": "maybe"},
    ],
)
def test_unknown_filter_values_are_a_400(api, query):
    response = api.get("/api/migration-policies/", query)
    assert response.status_code == 400
    assert set(response.json()) == set(query)


def test_boolean_filters_take_true_false_or_nothing(api):
    PolicyFactory(name="Custom")
    assert names(api.get("/api/migration-policies/", {"builtin": "false"})) == {"Custom"}
    assert len(names(api.get("/api/migration-policies/", {"builtin": "true"}))) == 5
    assert len(names(api.get("/api/migration-policies/", {"builtin": ""}))) == 6


def test_a_schedule_with_decreasing_limits_is_refused_on_its_field(api):
    body = {
        "name": "Confused",
        "convergence": {
            "stalling": [
                {"limit": 3, "action": {"name": "setDowntime", "params": ["300"]}},
                {"limit": 2, "action": {"name": "setDowntime", "params": ["400"]}},
            ]
        },
    }
    response = api.post("/api/migration-policies/", body, format="json")
    assert response.status_code == 400
    assert "increase" in " ".join(response.json()["convergence"])
    assert not MigrationPolicy.objects.filter(name="Confused").exists()


def test_a_schedule_reads_back_in_its_stored_form(api):
    body = {"name": "Short", "convergence": {"initial": 150, "last": [{"name": "abort"}]}}
    response = api.post("/api/migration-policies/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["convergence"] == {
        "initial": 150,
        "stalling": [],
        "last": [{"name": "abort", "params": []}],
    }


def test_a_policy_in_use_cannot_be_deleted(api):
    policy = PolicyFactory()
    ClusterFactory(migration_policy=policy)
    response = api.delete(f"/api/migration-policies/{policy.pk}/")
    assert response.status_code == 400
    assert "in use" in " ".join(response.json()["non_field_errors"])
    assert MigrationPolicy.objects.filter(pk=policy.pk).exists()


def test_a_policy_used_where_parallel_is_unsupported_cannot_gain_zero_copy(api, level):
    policy = PolicyFactory()
    ClusterFactory(migration_policy=policy, compatibility_version=level("4.6"))
    response = api.patch(f"/api/migration-policies/{policy.pk}/", {"zerocopy": True}, format="json")
    assert response.status_code == 400
    assert "4.6" in " ".join(response.json()["zerocopy"])


def test_legacy_is_refused_above_4_2(api):
    response = api.post("/api/clusters/", {"name": "new", "migration_policy": str(LEGACY_ID)}, format="json")
    assert response.status_code == 400
    assert "Legacy" in " ".join(response.json()["migration_policy"])
