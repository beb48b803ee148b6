"""/ovirt-engine/: the SSO endpoints and the API, with oVirt's paths (never a trailing slash)."""

from django.urls import path, re_path

from ovirt_api import views

ID = r"(?P<pk>[^/]+)"

urlpatterns = [
    path("sso/oauth/token", views.sso_token, name="ovirt-sso-token"),
    path("services/sso-logout", views.sso_logout_view, name="ovirt-sso-logout"),
    re_path(r"^api/?$", views.api_root, name="ovirt-api"),
    re_path(r"^api/clusters/?$", views.clusters, name="ovirt-clusters"),
    re_path(rf"^api/clusters/{ID}/?$", views.cluster, name="ovirt-cluster"),
    re_path(r"^api/hosts/?$", views.hosts, name="ovirt-hosts"),
    re_path(rf"^api/hosts/{ID}/?$", views.host, name="ovirt-host"),
    re_path(r"^api/vms/?$", views.vms, name="ovirt-vms"),
    re_path(rf"^api/vms/{ID}/?$", views.vm, name="ovirt-vm"),
    re_path(rf"^api/vms/{ID}/migrate/?$", views.vm_migrate, name="ovirt-vm-migrate"),
    re_path(rf"^api/vms/{ID}/cancelmigration/?$", views.vm_cancel_migration, name="ovirt-vm-cancel-migration"),
    re_path(r"^api/jobs/?$", views.jobs, name="ovirt-jobs"),
    re_path(rf"^api/jobs/{ID}/?$", views.job, name="ovirt-job"),
    re_path(r"^api/options/(?P<name>[^/]+)/?$", views.option, name="ovirt-option"),
    re_path(r"^(?P<path>.*)$", views.not_found),
]
