from django.urls import path

from clusters.services import CLUSTER_SERVICES, HOST_SERVICES, VM_SERVICES
from core.views import ObjectDeleteView
from migrations_app import estate_views as views

app_name = "clusters"

urlpatterns = [
    path("clusters/", views.ClusterListView.as_view(), name="cluster_list"),
    path("clusters/add/", views.ClusterEditView.as_view(), name="cluster_add"),
    path("clusters/form-options/", views.cluster_form_refresh, name="cluster_form_refresh"),
    path("clusters/<uuid:pk>/", views.ClusterDetailView.as_view(), name="cluster_detail"),
    path("clusters/<uuid:pk>/edit/", views.ClusterEditView.as_view(), name="cluster_edit"),
    path("clusters/<uuid:pk>/form-options/", views.cluster_form_refresh, name="cluster_form_refresh"),
    path("clusters/<uuid:pk>/delete/", ObjectDeleteView.as_view(services=CLUSTER_SERVICES), name="cluster_delete"),
    path("hosts/", views.HostListView.as_view(), name="host_list"),
    path("hosts/add/", views.HostEditView.as_view(), name="host_add"),
    path("hosts/<uuid:pk>/", views.HostDetailView.as_view(), name="host_detail"),
    path("hosts/<uuid:pk>/edit/", views.HostEditView.as_view(), name="host_edit"),
    path("hosts/<uuid:pk>/delete/", ObjectDeleteView.as_view(services=HOST_SERVICES), name="host_delete"),
    path("hosts/<uuid:pk>/refresh/", views.host_refresh, name="host_refresh"),
    path("hosts/<uuid:pk>/maintenance/", views.host_maintenance, name="host_maintenance"),
    path("hosts/<uuid:pk>/activate/", views.host_activate, name="host_activate"),
    path("hosts/<uuid:pk>/agent-token/", views.host_agent_token, name="host_agent_token"),
    path("vms/", views.VMListView.as_view(), name="vm_list"),
    path("vms/add/", views.VMEditView.as_view(), name="vm_add"),
    path("vms/<uuid:pk>/", views.VMDetailView.as_view(), name="vm_detail"),
    path("vms/<uuid:pk>/edit/", views.VMEditView.as_view(), name="vm_edit"),
    path("vms/<uuid:pk>/delete/", ObjectDeleteView.as_view(services=VM_SERVICES), name="vm_delete"),
]
