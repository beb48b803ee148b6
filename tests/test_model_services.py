"""One services declaration per model: the pages, the API and admin all write through it, and it
names the permission each write needs."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import resolve

from clusters.models import VM, Cluster, ClusterLevel, Host, HostStatus
from clusters.services import CLUSTER_SERVICES, HOST_SERVICES, LEVEL_SERVICES, VM_SERVICES
from core.models import AuditEntry
from policies.models import MigrationPolicy
from policies.services import POLICY_SERVICES
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db

DECLARED = [LEVEL_SERVICES, CLUSTER_SERVICES, HOST_SERVICES, VM_SERVICES, POLICY_SERVICES]
WRITES = ("create", "update", "delete")


@pytest.mark.parametrize("services", DECLARED, ids=lambda services: services.model.__name__)
def test_every_permission_the_services_name_exists(services):
    for write in WRITES:
        app_label, codename = services.permission(write).split(".")
        assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), write


@pytest.mark.parametrize(
    ("model", "services", "pages", "api"),
    [
        (Cluster, CLUSTER_SERVICES, "/clusters/", "/api/clusters/"),
        (Host, HOST_SERVICES, "/hosts/", "/api/hosts/"),
        (VM, VM_SERVICES, "/vms/", "/api/vms/"),
        (MigrationPolicy, POLICY_SERVICES, "/policies/", "/api/migration-policies/"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_pages_api_and_admin_write_through_the_same_declaration(model, services, pages, api):
    for page in ("add/", "00000000-0000-0000-0000-000000000001/edit/", "00000000-0000-0000-0000-000000000001/delete/"):
        view = resolve(pages + page).func
        assert view.view_class(**view.view_initkwargs).services is services, page
    assert resolve(api).func.cls.services is services
    assert admin.site._registry[model].services is services


def test_the_update_service_gets_the_object_under_its_own_name(actor):
    cluster = ClusterFactory(name="prod")
    saved = CLUSTER_SERVICES.update(
        actor=actor, instance=cluster, data={"description": "Production"}, expected_version=1
    )
    assert (saved.description, saved.version) == ("Production", 2)
    assert AuditEntry.objects.get().after == {"description": "Production"}


def test_a_write_the_services_do_not_offer_is_refused_on_every_way_in(actor, admin_user):
    assert not LEVEL_SERVICES.offers("create") and not LEVEL_SERVICES.offers("delete")
    with pytest.raises(PermissionDenied):
        LEVEL_SERVICES.create(actor=actor, data={"level": "4.9"})
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/clusters/clusterlevel/add/").status_code == 403
    assert client.post("/admin/clusters/clusterlevel/4.6/delete/", {"post": "yes"}).status_code == 403
    assert client.post("/api/cluster-levels/", {"level": "4.9"}, content_type="application/json").status_code == 405
    assert not ClusterLevel.objects.filter(level="4.9").exists()
    assert ClusterLevel.objects.filter(level="4.6").exists()


def test_a_create_the_admin_posts_that_the_service_refuses_is_a_form_error_and_writes_nothing(admin_user):
    client = Client()
    client.force_login(admin_user)
    cluster = ClusterFactory()
    response = client.post(
        "/admin/clusters/host/add/",
        {
            "name": "hv-1",
            "cluster": str(cluster.pk),
            "address": "10.0.0.1",
            "libvirt_uri": "qemu+tls://hv-1/system",
            "status": HostStatus.NON_OPERATIONAL,
        },
    )
    assert response.status_code == 200
    assert "status" in response.context["adminform"].form.errors
    assert not Host.objects.exists()
    assert not AuditEntry.objects.exists()
