"""Django admin: every model registered, writes through the services (validated, versioned,
audited), refusals as form errors, built-ins and history read-only, and the admin actions."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client

from clusters.models import VM, Cluster, ClusterLevel, Host, HostStatus
from clusters.services import cluster_update
from core.audit import Actor
from core.models import AuditEntry
from core.roles import OPERATOR_GROUP, READ_ONLY_GROUP, roles_ensure
from migrations_app.models import JobState, MigrationJob
from policies.models import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID, MigrationPolicy
from tests.broker import Sent, take
from tests.factories import ClusterFactory, HostFactory, JobFactory, PolicyFactory, UserFactory, VMFactory

pytestmark = pytest.mark.django_db

FERRY_MODELS = [
    model
    for app in ("clusters", "policies", "migrations_app", "core")
    for model in apps.get_app_config(app).get_models()
]


@pytest.fixture
def client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def admin_url(model, action: str = "changelist", *args) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/" + {
        "changelist": "",
        "add": "add/",
        "change": "{}/change/",
        "delete": "{}/delete/",
    }[action].format(*args)


def form_data(response, **changes) -> dict:
    """The admin form as the browser would post it back, with `changes` applied."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    data.update(changes)
    return data


def errors(response) -> dict:
    assert response.status_code == 200, "the form should be shown again with its errors"
    form = response.context["adminform"].form
    return {field: " ".join(messages) for field, messages in form.errors.items()}


@pytest.mark.parametrize("model", FERRY_MODELS, ids=lambda model: model.__name__)
def test_every_model_is_registered_with_columns_filters_and_search(client, model):
    model_admin = admin.site._registry[model]
    assert len(model_admin.list_display) > 2 and model_admin.list_filter and model_admin.search_fields
    assert client.get(admin_url(model)).status_code == 200
    assert client.get(admin_url(model), {"q": "x"}).status_code == 200


def test_changelists_do_not_query_per_row(client, django_assert_max_num_queries):
    cluster = ClusterFactory()
    for _ in range(30):
        VMFactory(host=HostFactory(cluster=cluster))
    for model in (Cluster, Host, VM, MigrationJob, AuditEntry, MigrationPolicy):
        with django_assert_max_num_queries(15):
            assert client.get(admin_url(model)).status_code == 200


def test_adding_a_cluster_goes_through_the_service_and_is_audited(client, admin_user):
    page = client.get(admin_url(Cluster, "add"))
    response = client.post(admin_url(Cluster, "add"), form_data(page, name="prod", description="Production"))
    assert response.status_code == 302
    cluster = Cluster.objects.get(name="prod")
    entry = AuditEntry.objects.get(object_id=str(cluster.pk))
    assert (entry.action, entry.actor, entry.user) == ("create", "admin", admin_user)
    assert entry.after["description"] == "Production"


def test_changing_a_cluster_bumps_its_version_and_audits_the_difference(client):
    cluster = ClusterFactory(name="prod")
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    response = client.post(admin_url(Cluster, "change", cluster.pk), form_data(page, migration_encrypted="true"))
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.migration_encrypted, cluster.version) == ("true", 2)
    entry = AuditEntry.objects.get(action="update")
    assert (entry.before, entry.after) == ({"migration_encrypted": "inherit"}, {"migration_encrypted": "true"})


def offered(client, cluster) -> set:
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    return set(page.context["adminform"].form.fields["migration_policy"].queryset.values_list("pk", flat=True))


def test_the_cluster_form_offers_only_the_policies_valid_at_its_level(client, level):
    assert VERY_LARGE_VMS_ID not in offered(client, ClusterFactory(compatibility_version=level("4.6")))
    assert VERY_LARGE_VMS_ID in offered(client, ClusterFactory(compatibility_version=level("4.7")))
    add_page = client.get(admin_url(Cluster, "add"))
    assert VERY_LARGE_VMS_ID in set(
        add_page.context["adminform"].form.fields["migration_policy"].queryset.values_list("pk", flat=True)
    )


def test_a_cluster_keeps_its_policy_in_the_form_when_its_level_loses_parallel(client, level):
    cluster = ClusterFactory(compatibility_version=level("4.8"), migration_policy_id=VERY_LARGE_VMS_ID)
    ClusterLevel.objects.filter(level="4.8").update(parallel_migrations_supported=False)
    assert VERY_LARGE_VMS_ID in offered(client, cluster)
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    response = client.post(admin_url(Cluster, "change", cluster.pk), form_data(page, description="Kept"))
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.description, cluster.migration_policy_id) == ("Kept", VERY_LARGE_VMS_ID)


def test_the_server_refuses_a_policy_not_offered_even_if_posted(client, level):
    cluster = ClusterFactory(compatibility_version=level("4.6"))
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    response = client.post(
        admin_url(Cluster, "change", cluster.pk), form_data(page, migration_policy=str(VERY_LARGE_VMS_ID))
    )
    assert "migration_policy" in errors(response)
    cluster.refresh_from_db()
    assert (cluster.migration_policy_id, cluster.version) == (MINIMAL_DOWNTIME_ID, 1)
    assert not AuditEntry.objects.exists()


def test_moving_a_very_large_vms_cluster_to_an_old_level_is_refused(client, level):
    cluster = ClusterFactory(compatibility_version=level("4.7"), migration_policy_id=VERY_LARGE_VMS_ID)
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    response = client.post(admin_url(Cluster, "change", cluster.pk), form_data(page, compatibility_version="4.6"))
    assert "migration_policy" in errors(response)
    cluster.refresh_from_db()
    assert cluster.compatibility_version_id == "4.7"


def test_a_stale_admin_edit_is_refused(client, admin_user):
    cluster = ClusterFactory(name="prod")
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    cluster_update(actor=Actor.of(admin_user), cluster=cluster, data={"description": "Someone else"})

    response = client.post(admin_url(Cluster, "change", cluster.pk), form_data(page, description="Mine"))

    assert "changed by someone else" in errors(response)["__all__"]
    cluster.refresh_from_db()
    assert (cluster.description, cluster.version) == ("Someone else", 2)


def test_a_service_refusal_is_a_form_error_not_a_500(client):
    host = HostFactory()
    page = client.get(admin_url(Host, "change", host.pk))
    response = client.post(admin_url(Host, "change", host.pk), form_data(page, status=HostStatus.NON_OPERATIONAL))
    assert "status" in errors(response)
    host.refresh_from_db()
    assert host.status == HostStatus.UP


def test_built_in_policies_are_read_only(client):
    policy = MigrationPolicy.objects.get(pk=VERY_LARGE_VMS_ID)
    page = client.get(admin_url(MigrationPolicy, "change", policy.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(admin_url(MigrationPolicy, "change", policy.pk), {"name": "Mine"}).status_code == 403
    assert client.post(admin_url(MigrationPolicy, "delete", policy.pk), {"post": "yes"}).status_code == 403
    assert MigrationPolicy.objects.get(pk=VERY_LARGE_VMS_ID).name == "Very large VMs"


def test_custom_policies_are_edited_through_the_service(client):
    policy = PolicyFactory(name="Patient")
    page = client.get(admin_url(MigrationPolicy, "change", policy.pk))
    response = client.post(admin_url(MigrationPolicy, "change", policy.pk), form_data(page, max_migrations=4))
    assert response.status_code == 302
    assert AuditEntry.objects.get(action="update").after == {"max_migrations": 4}


def test_levels_change_through_the_service(client):
    page = client.get(admin_url(ClusterLevel, "change", "4.6"))
    response = client.post(
        admin_url(ClusterLevel, "change", "4.6"), form_data(page, parallel_migrations_supported="on")
    )
    assert response.status_code == 302
    assert ClusterLevel.objects.get(level="4.6").parallel_migrations_supported
    assert AuditEntry.objects.get().object_type == "clusterlevel"


def run_action(client, model, action: str, objects, **extra):
    return client.post(
        admin_url(model),
        {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objects], **extra},
        follow=True,
    )


def test_refresh_capabilities_action(client, django_capture_on_commit_callbacks, settings):
    settings.FERRY_HOST_QUEUES = True
    hosts = [HostFactory(), HostFactory()]

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(client, Host, "refresh_capabilities", hosts)

    assert response.status_code == 200
    for host in hosts:
        assert sorted(take(f"host.{host.pk}"), key=str) == [
            Sent(task="ferry.refresh_capabilities", args=[str(host.pk)], kwargs={}),
            Sent(task="ferry.sync_inventory", args=[str(host.pk)], kwargs={}),
        ]
    assert AuditEntry.objects.filter(action="refresh").count() == 2


def test_maintenance_and_activate_actions(client):
    hosts = [HostFactory(), HostFactory()]
    run_action(client, Host, "set_maintenance", hosts)
    assert set(Host.objects.values_list("status", flat=True)) == {HostStatus.MAINTENANCE}
    assert AuditEntry.objects.filter(action="maintenance").count() == 2
    run_action(client, Host, "activate", hosts[:1])
    # Activating until the host's agent reports (tests/models/test_host_truth.py follows it up).
    assert Host.objects.get(pk=hosts[0].pk).status == HostStatus.ACTIVATING
    assert AuditEntry.objects.get(action="activate").after["status"] == "activating"


def test_cancel_selected_migrations_action(client):
    from django.utils import timezone

    queued = JobFactory()
    ended = JobFactory(state=JobState.SUCCEEDED, progress=100, finished_at=timezone.now())

    response = run_action(client, MigrationJob, "cancel", [queued, ended])

    assert MigrationJob.objects.get(pk=queued.pk).state == JobState.CANCELLED
    assert MigrationJob.objects.get(pk=ended.pk).state == JobState.SUCCEEDED
    notes = " ".join(str(message) for message in response.context["messages"])
    assert "Migrations cancelled: 1." in notes and "already ended" in notes
    assert AuditEntry.objects.get(action="cancel").object_id == str(queued.pk)


def test_migration_jobs_are_read_only_except_cancel(client):
    job = JobFactory()
    assert client.get(admin_url(MigrationJob, "add")).status_code == 403
    assert client.get(admin_url(MigrationJob, "change", job.pk)).status_code == 200
    assert client.post(admin_url(MigrationJob, "change", job.pk), {"state": "succeeded"}).status_code == 403
    assert client.post(admin_url(MigrationJob, "delete", job.pk), {"post": "yes"}).status_code == 403
    assert MigrationJob.objects.get(pk=job.pk).state == JobState.QUEUED


def test_the_audit_log_is_read_only(client, admin_user):
    ClusterFactory()
    cluster_update(actor=Actor.of(admin_user), cluster=Cluster.objects.get(), data={"description": "x"})
    entry = AuditEntry.objects.get()
    assert client.get(admin_url(AuditEntry, "add")).status_code == 403
    assert client.get(admin_url(AuditEntry, "change", entry.pk)).status_code == 200
    assert client.post(admin_url(AuditEntry, "change", entry.pk), {"actor": "me"}).status_code == 403
    assert client.post(admin_url(AuditEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403


def test_deleting_is_audited(client):
    vm = VMFactory()
    response = client.post(admin_url(VM, "delete", vm.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not VM.objects.filter(pk=vm.pk).exists()
    assert AuditEntry.objects.get(action="delete").object_id == str(vm.pk)


def test_a_refused_delete_is_a_message_not_a_500(client):
    job = JobFactory()
    response = client.post(admin_url(VM, "delete", job.vm.pk), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "being migrated" in " ".join(str(message) for message in response.context["messages"])
    assert VM.objects.filter(pk=job.vm.pk).exists()


def test_bulk_delete_goes_through_the_services(client):
    free, busy = VMFactory(), JobFactory().vm
    response = run_action(client, VM, "delete_selected", [free, busy], post="yes")
    assert response.status_code == 200
    assert not VM.objects.filter(pk=free.pk).exists() and VM.objects.filter(pk=busy.pk).exists()
    assert AuditEntry.objects.filter(action="delete").count() == 1
    assert "being migrated" in " ".join(str(message) for message in response.context["messages"])


def test_a_read_only_staff_user_can_look_but_not_touch(db):
    roles_ensure()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=READ_ONLY_GROUP))
    client = Client()
    client.force_login(user)
    cluster = ClusterFactory()
    assert client.get(admin_url(Cluster)).status_code == 200
    page = client.get(admin_url(Cluster, "change", cluster.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(admin_url(Cluster, "change", cluster.pk), {"name": "mine"}).status_code == 403
    assert client.get(admin_url(Cluster, "add")).status_code == 403
    assert (
        not run_action(client, Host, "set_maintenance", [HostFactory()])
        .context["cl"]
        .model_admin.get_actions(page.wsgi_request)
        .get("set_maintenance")
    )


def test_an_operator_in_admin_runs_host_actions_but_cannot_edit_a_host(db):
    roles_ensure()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    client = Client()
    client.force_login(user)
    host = HostFactory()
    page = client.get(admin_url(Host, "change", host.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    response = client.post(
        admin_url(Host, "change", host.pk),
        {"name": host.name, "cluster": host.cluster_id, "address": host.address,
         "libvirt_uri": "qemu+ext:///system?command=/tmp/owned", "peer_uri": ""},
    )  # fmt: skip
    assert response.status_code == 403
    assert client.get(admin_url(Host, "add")).status_code == 403
    run_action(client, Host, "set_maintenance", [host])
    host.refresh_from_db()
    assert host.status == HostStatus.MAINTENANCE and host.libvirt_uri.startswith("qemu+tls://")
