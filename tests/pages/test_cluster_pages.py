"""The cluster pages: list with filters, add and edit through the services, the in-place offer."""

import pytest

from clusters.models import Cluster, ClusterLevel
from clusters.services import cluster_update, level_update
from core.models import AuditEntry
from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def cluster_post(**values) -> dict:
    """What the cluster form posts, with the model's defaults for what is not given."""
    data = {
        "name": "new",
        "description": "",
        "compatibility_version": "4.7",
        "migration_policy": str(MINIMAL_DOWNTIME_ID),
        "migration_bandwidth": "auto",
        "migration_bandwidth_custom_mbps": "",
        "migration_auto_converge": "inherit",
        "migration_compressed": "inherit",
        "migration_encrypted": "inherit",
        "parallel_migrations_policy": "disabled",
        "custom_parallel_migrations": "",
        "error_handling": "migrate",
    }
    return data | {key: str(value) for key, value in values.items()}


def options(html: str, select: str) -> str:
    start = html.index(f'name="{select}"')
    return html[start : html.index("</select>", start)]


def test_the_list_shows_level_policy_parallel_and_encryption(admin_client):
    ClusterFactory(
        name="big",
        parallel_migrations_policy="custom",
        custom_parallel_migrations=8,
        migration_encrypted="true",
        migration_policy_id=VERY_LARGE_VMS_ID,
    )
    page = admin_client.get("/clusters/").content.decode()
    assert "big" in page and "4.7" in page and "Very large VMs" in page and "Custom (8)" in page and "On" in page


def test_the_list_filters_with_the_filterset_and_htmx_gets_only_the_results(admin_client):
    ClusterFactory(name="old", compatibility_version_id="4.6")
    ClusterFactory(name="young", compatibility_version_id="4.8")
    page = admin_client.get("/clusters/?compatibility_version=4.6").content.decode()
    assert ">old<" in page and ">young<" not in page
    partial = admin_client.get(
        "/clusters/?q=you", headers={"HX-Request": "true", "HX-Target": "results"}
    ).content.decode()
    assert ">young<" in partial and ">old<" not in partial and "<html" not in partial


def test_junk_filters_are_ignored_not_a_500(admin_client):
    response = admin_client.get("/clusters/?compatibility_version=9.9&migration_policy=nope&page=zz")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_adding_a_cluster_stores_it_and_audits_it(admin_client):
    response = admin_client.post("/clusters/add/", cluster_post(name="prod", description="main"))
    cluster = Cluster.objects.get(name="prod")
    assert response.status_code == 302 and response["Location"] == f"/clusters/{cluster.pk}/"
    assert AuditEntry.objects.filter(action="create", object_id=str(cluster.pk), actor="admin").exists()
    assert "Created cluster prod." in admin_client.get(response["Location"]).content.decode()


def test_a_post_with_only_the_name_gets_the_model_defaults(admin_client):
    assert admin_client.post("/clusters/add/", {"name": "bare"}).status_code == 302
    cluster = Cluster.objects.get(name="bare")
    assert (cluster.compatibility_version_id, cluster.migration_policy_id) == ("4.7", MINIMAL_DOWNTIME_ID)


def test_the_add_form_offers_very_large_vms_only_where_parallel_is_supported(admin_client):
    page = admin_client.get("/clusters/add/").content.decode()
    assert "Very large VMs" in options(page, "migration_policy")
    fragment = admin_client.get("/clusters/form-options/", {"compatibility_version": "4.6"}).content.decode()
    assert "Very large VMs" not in options(fragment, "migration_policy")
    assert "Minimal downtime" in options(fragment, "migration_policy")
    assert ">Auto<" not in options(fragment, "parallel_migrations_policy")
    assert 'hx-swap-oob="true"' in fragment


def test_changing_the_version_away_from_parallel_moves_the_choices_and_says_so(admin_client):
    fragment = admin_client.get(
        "/clusters/form-options/",
        cluster_post(
            compatibility_version="4.6", migration_policy=VERY_LARGE_VMS_ID, parallel_migrations_policy="auto"
        ),
    ).content.decode()
    assert "Very large VMs is not offered at compatibility version 4.6: the policy is now Minimal downtime." in fragment
    assert "does not support parallel migrations: they are now Disabled." in fragment
    selected = options(fragment, "migration_policy")
    assert f'value="{MINIMAL_DOWNTIME_ID}" selected' in selected


def test_a_forged_post_of_very_large_vms_at_4_6_is_refused_with_the_models_message(admin_client):
    response = admin_client.post(
        "/clusters/add/", cluster_post(name="forged", compatibility_version="4.6", migration_policy=VERY_LARGE_VMS_ID)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Very large VMs needs parallel migrations, which compatibility version 4.6 does not support." in page
    # What the select shows (the first offered policy) is what the summary and the notes describe.
    assert response.context["form"].selected_policy().name == "Minimal downtime"
    assert not Cluster.objects.filter(name="forged").exists()
    assert not AuditEntry.objects.exists()


def test_the_form_shows_the_silent_resolutions_in_plain_words(admin_client):
    fragment = admin_client.get(
        "/clusters/form-options/", cluster_post(migration_policy=VERY_LARGE_VMS_ID)
    ).content.decode()
    assert "Zero-copy needs parallel connections, so this migration uses them (Auto Parallel)" in fragment
    fragment = admin_client.get(
        "/clusters/form-options/", cluster_post(migration_policy=VERY_LARGE_VMS_ID, migration_encrypted="true")
    ).content.decode()
    assert "This migration is encrypted and zero-copy cannot be encrypted" in fragment


def test_editing_a_cluster_saves_and_the_history_shows_the_change(admin_client, world):
    url = f"/clusters/{world.cluster.pk}/edit/"
    response = admin_client.post(
        url, cluster_post(name="prod", migration_policy=VERY_LARGE_VMS_ID, version=world.cluster.version)
    )
    assert response.status_code == 302
    world.cluster.refresh_from_db()
    assert world.cluster.migration_policy_id == VERY_LARGE_VMS_ID and world.cluster.version == 2
    page = admin_client.get(response["Location"]).content.decode()
    assert "Saved cluster prod." in page
    assert "Minimal downtime → <strong>Very large VMs</strong>" in page


def test_a_stale_edit_is_refused_and_lists_what_the_other_person_changed(admin_client, world, actor):
    form = admin_client.get(f"/clusters/{world.cluster.pk}/edit/").context["form"]
    loaded = form.initial["loaded_values"]
    cluster_update(
        actor=actor, cluster=world.cluster, data={"description": "changed by Alice", "migration_encrypted": "true"}
    )
    response = admin_client.post(
        f"/clusters/{world.cluster.pk}/edit/",
        cluster_post(name="prod", description="mine", version=1, loaded_values=loaded),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Someone else saved this cluster while you were editing it" in page
    changes = {c.label: (c.before, c.theirs, c.yours) for c in response.context["stale_changes"]}
    assert changes == {
        "Description": ("Production hypervisors", "changed by Alice", "mine"),
        "Migration encryption": (
            "Inherit (global default: off)",
            "On: migrate over TLS",
            "Inherit (global default: off)",
        ),
    }
    world.cluster.refresh_from_db()
    assert world.cluster.description == "changed by Alice"
    # The form now carries the stored version: saving again, knowingly, goes through.
    assert 'name="version" value="2"' in page
    again = admin_client.post(
        f"/clusters/{world.cluster.pk}/edit/", cluster_post(name="prod", description="mine", version=2)
    )
    assert again.status_code == 302


def test_a_stale_edit_without_the_loaded_values_still_shows_the_differences(admin_client, world, actor):
    cluster_update(actor=actor, cluster=world.cluster, data={"description": "theirs"})
    response = admin_client.post(
        f"/clusters/{world.cluster.pk}/edit/", cluster_post(name="prod", description="mine", version=1)
    )
    labels = [c.label for c in response.context["stale_changes"]]
    assert labels == ["Description"]


def test_an_edit_of_a_cluster_deleted_meanwhile_says_so(admin_client, actor):
    cluster = ClusterFactory(name="gone")
    url = f"/clusters/{cluster.pk}/edit/"
    admin_client.get(url)
    Cluster.objects.filter(pk=cluster.pk).delete()
    assert admin_client.post(url, cluster_post(name="gone", version=1)).status_code == 404


def test_junk_form_values_give_field_errors_not_a_500(admin_client):
    response = admin_client.post(
        "/clusters/add/",
        cluster_post(
            name="",
            compatibility_version="9.9",
            migration_policy="not-a-uuid",
            migration_bandwidth="custom",
            migration_bandwidth_custom_mbps="-5",
            parallel_migrations_policy="custom",
            custom_parallel_migrations="999",
            error_handling="panic",
            version="abc",
            loaded_values="garbage",
        ),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"name", "compatibility_version", "migration_policy", "error_handling", "version"} <= set(errors)
    assert not Cluster.objects.exists()


def test_custom_values_are_ignored_unless_custom_is_chosen(admin_client):
    response = admin_client.post(
        "/clusters/add/", cluster_post(name="c", migration_bandwidth_custom_mbps="junk", custom_parallel_migrations="1")
    )
    assert response.status_code == 302
    cluster = Cluster.objects.get(name="c")
    assert cluster.migration_bandwidth_custom_mbps is None and cluster.custom_parallel_migrations is None


def test_a_custom_parallel_count_out_of_range_is_refused_on_its_field(admin_client):
    response = admin_client.post(
        "/clusters/add/", cluster_post(name="c", parallel_migrations_policy="custom", custom_parallel_migrations="1")
    )
    assert "custom_parallel_migrations" in response.context["form"].errors


def test_deleting_a_cluster_with_hosts_is_refused_with_a_message(admin_client, world):
    response = admin_client.post(f"/clusters/{world.cluster.pk}/delete/", follow=True)
    assert Cluster.objects.filter(pk=world.cluster.pk).exists()
    assert "still used by" in response.content.decode()


def test_deleting_an_empty_cluster(admin_client):
    cluster = ClusterFactory(name="empty")
    response = admin_client.post(f"/clusters/{cluster.pk}/delete/", {"version": "1"})
    assert response.status_code == 302 and response["Location"] == "/clusters/"
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


def test_bad_ids_in_urls_are_404(admin_client):
    for url in (
        "/clusters/not-a-uuid/",
        "/clusters/00000000-0000-0000-0000-000000000001/",
        "/clusters/00000000-0000-0000-0000-000000000001/edit/",
        "/hosts/x/",
        "/vms/1/migrate/",
        "/migrations/zz/",
        "/policies/12/",
    ):
        assert admin_client.get(url).status_code == 404, url


def test_the_form_refresh_with_junk_values_still_answers(admin_client):
    response = admin_client.get(
        "/clusters/form-options/",
        {"compatibility_version": "junk", "migration_policy": "nope", "parallel_migrations_policy": "<script>"},
    )
    assert response.status_code == 200
    assert "Minimal downtime" in options(response.content.decode(), "migration_policy")
    assert admin_client.get("/clusters/00000000-0000-0000-0000-000000000001/form-options/").status_code == 404


def test_a_cluster_keeps_very_large_vms_when_its_level_loses_parallel_migrations(admin_client, actor):
    cluster = ClusterFactory(name="kept", migration_policy_id=VERY_LARGE_VMS_ID, parallel_migrations_policy="auto")
    level_update(actor=actor, level=ClusterLevel.objects.get(pk="4.7"), data={"parallel_migrations_supported": False})
    page = admin_client.get(f"/clusters/{cluster.pk}/edit/").content.decode()
    assert "Very large VMs (kept; not offered at 4.7)" in options(page, "migration_policy")
    assert ">Auto<" in options(page, "parallel_migrations_policy")
    assert "The migration policy Very large VMs uses zero-copy, but compatibility version 4.7 does not" in page
    response = admin_client.post(
        f"/clusters/{cluster.pk}/edit/",
        cluster_post(
            name="kept",
            description="still here",
            migration_policy=VERY_LARGE_VMS_ID,
            parallel_migrations_policy="auto",
            version=1,
        ),
    )
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.migration_policy_id, cluster.description) == (VERY_LARGE_VMS_ID, "still here")
