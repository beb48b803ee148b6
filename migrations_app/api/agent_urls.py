"""/api/agent/: the agent API (docs/agent-api.md)."""

from django.urls import path

from migrations_app.api import agent_views as views

urlpatterns = [
    path("host/", views.HostInfoView.as_view(), name="agent-host"),
    path("capabilities/", views.CapabilitiesView.as_view(), name="agent-capabilities"),
    path("inventory/", views.InventoryView.as_view(), name="agent-inventory"),
    path("jobs/<uuid:job_id>/", views.JobView.as_view(), name="agent-job"),
    path("jobs/<uuid:job_id>/claim/", views.JobClaimView.as_view(), name="agent-job-claim"),
    path("jobs/<uuid:job_id>/progress/", views.JobProgressView.as_view(), name="agent-job-progress"),
    path("jobs/<uuid:job_id>/finish/", views.JobFinishView.as_view(), name="agent-job-finish"),
    path("jobs/<uuid:job_id>/reconcile/", views.JobReconcileView.as_view(), name="agent-job-reconcile"),
]
