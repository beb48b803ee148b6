"""Policy pages: built-ins read-only with a readable schedule; custom ones edited with the schedule editor."""

import json

import pytest

from core.models import AuditEntry
from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID, MigrationPolicy
from policies.services import policy_update

pytestmark = pytest.mark.django_db


def policy_post(**values):
    data = {
        "name": "Night shift",
        "description": "",
        "max_migrations": "2",
        "auto_convergence": "true",
        "migration_compression": "false",
        "enable_guest_events": "on",
        "convergence-initial": "250",
        "convergence-stalling-limit": ["1", "3"],
        "convergence-stalling-action": ["setDowntime", "postcopy"],
        "convergence-stalling-downtime": ["400", ""],
        "convergence-last-action": ["setDowntime", "abort"],
        "convergence-last-downtime": ["3000", ""],
    }
    return data | values


def test_a_builtin_shows_its_schedule_as_a_readable_table_and_no_edit_buttons(admin_client):
    page = admin_client.get(f"/policies/{VERY_LARGE_VMS_ID}/").content.decode()
    for row in (
        "At the start",
        "Downtime 300 ms",
        "After iteration 1",
        "Downtime 400 ms",
        "After iteration 6",
        "Downtime 1500 ms",
        "Still stalling after that",
        "Downtime 5000 ms",
        "Abort the migration",
    ):
        assert row in page
    assert f"/policies/{VERY_LARGE_VMS_ID}/edit/" not in page
    assert f"/policies/{VERY_LARGE_VMS_ID}/delete/" not in page
    assert "Copy to a new policy" in page


def test_the_edit_and_delete_urls_of_a_builtin_refuse(admin_client):
    for url in (f"/policies/{MINIMAL_DOWNTIME_ID}/edit/", f"/policies/{MINIMAL_DOWNTIME_ID}/delete/"):
        response = admin_client.get(url)
        assert response.status_code == 403
        assert "Built-in migration policies are read-only" in response.content.decode()
        assert admin_client.post(url, policy_post()).status_code == 403
    assert MigrationPolicy.objects.get(pk=MINIMAL_DOWNTIME_ID).name == "Minimal downtime"


def test_creating_a_policy_with_the_schedule_editor_builds_the_convergence(admin_client):
    response = admin_client.post("/policies/add/", policy_post())
    policy = MigrationPolicy.objects.get(name="Night shift")
    assert response.status_code == 302 and response["Location"] == f"/policies/{policy.pk}/"
    assert policy.convergence == {
        "initial": 250,
        "stalling": [
            {"limit": 1, "action": {"name": "setDowntime", "params": ["400"]}},
            {"limit": 3, "action": {"name": "postcopy", "params": []}},
        ],
        "last": [{"name": "setDowntime", "params": ["3000"]}, {"name": "abort", "params": []}],
    }
    assert policy.enable_guest_events and not policy.builtin


def test_empty_editor_rows_are_ignored(admin_client):
    data = policy_post(
        **{
            "convergence-stalling-limit": ["1", ""],
            "convergence-stalling-action": ["setDowntime", "setDowntime"],
            "convergence-stalling-downtime": ["400", ""],
            "convergence-last-action": ["setDowntime"],
            "convergence-last-downtime": [""],
        }
    )
    assert admin_client.post("/policies/add/", data).status_code == 302
    convergence = MigrationPolicy.objects.get(name="Night shift").convergence
    assert len(convergence["stalling"]) == 1 and convergence["last"] == []


def test_an_invalid_schedule_shows_the_models_message_and_keeps_the_rows(admin_client):
    data = policy_post(**{"convergence-stalling-limit": ["3", "2"]})
    response = admin_client.post("/policies/add/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Stalling step 2: iteration limits must increase (2 after 3)." in page
    assert 'name="convergence-stalling-limit" value="2"' in page
    assert not MigrationPolicy.objects.filter(name="Night shift").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"convergence-stalling-limit": ["x", "3"]}, "the iteration limit must be a positive whole number"),
        ({"convergence-stalling-downtime": ["-4", ""]}, "the downtime must be"),
        ({"convergence-stalling-action": ["explode", "postcopy"]}, "unknown action"),
        ({"convergence-initial": "999999999"}, "the downtime must be 1..600000 ms"),
    ],
)
def test_junk_in_the_schedule_editor_gives_a_message_not_a_500(admin_client, rows, message):
    response = admin_client.post("/policies/add/", policy_post(**rows))
    assert response.status_code == 200
    assert message in response.content.decode()


def test_the_convergence_may_be_posted_as_json_under_its_field_name(admin_client):
    schedule = {"initial": 100, "stalling": [], "last": [{"name": "abort", "params": []}]}
    data = {k: v for k, v in policy_post().items() if not k.startswith("convergence-")}
    response = admin_client.post("/policies/add/", data | {"convergence": json.dumps(schedule)})
    assert response.status_code == 302
    assert MigrationPolicy.objects.get(name="Night shift").convergence == schedule
    bad = admin_client.post("/policies/add/", data | {"name": "Other", "convergence": "{nope"})
    assert "The schedule is JSON" in bad.content.decode()


def test_editing_a_custom_policy_and_its_history(admin_client, world):
    url = f"/policies/{world.policy.pk}/edit/"
    page = admin_client.get(url).content.decode()
    assert 'name="convergence-stalling-limit" value="2"' in page
    response = admin_client.post(url, policy_post(name="Fast lane", version="1"))
    assert response.status_code == 302
    world.policy.refresh_from_db()
    assert world.policy.convergence["initial"] == 250 and world.policy.version == 2
    assert AuditEntry.objects.filter(object_id=str(world.policy.pk), action="update").exists()


def test_a_stale_policy_edit_is_refused_with_the_changes(admin_client, world, actor):
    loaded = admin_client.get(f"/policies/{world.policy.pk}/edit/").context["form"].initial["loaded_values"]
    policy_update(actor=actor, policy=world.policy, data={"max_migrations": 5})
    response = admin_client.post(
        f"/policies/{world.policy.pk}/edit/", policy_post(name="Fast lane", version="1", loaded_values=loaded)
    )
    assert response.status_code == 200
    changes = {c.label: (c.before, c.theirs) for c in response.context["stale_changes"]}
    assert changes == {"Concurrent migrations per host": ("2", "5")}
    world.policy.refresh_from_db()
    assert world.policy.convergence["initial"] == 200


def test_copying_a_builtin_prefills_a_new_policy(admin_client):
    page = admin_client.get(f"/policies/add/?from={VERY_LARGE_VMS_ID}").content.decode()
    assert 'value="Copy of Very large VMs"' in page
    assert 'name="convergence-stalling-limit" value="6"' in page
    assert admin_client.get("/policies/add/?from=junk").status_code == 200


def test_a_policy_in_use_cannot_be_deleted(admin_client, world):
    world.cluster.migration_policy = world.policy
    world.cluster.save()
    response = admin_client.post(f"/policies/{world.policy.pk}/delete/", follow=True)
    assert "in use by clusters or VMs" in response.content.decode()
    assert MigrationPolicy.objects.filter(pk=world.policy.pk).exists()
