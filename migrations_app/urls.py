from django.urls import path

from migrations_app import views

app_name = "migrations"

urlpatterns = [
    path("vms/migrate/", views.vm_migrate_many, name="vm_migrate_many"),
    path("vms/<uuid:pk>/migrate/", views.vm_migrate, name="vm_migrate"),
    path("vms/<uuid:pk>/migrate/plan/", views.vm_migration_plan, name="vm_migration_plan"),
    path("clusters/<uuid:pk>/impact/", views.cluster_impact_preview, name="cluster_impact"),
    path("migrations/", views.JobListView.as_view(), name="job_list"),
    path("migrations/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("migrations/<uuid:pk>/status/", views.job_status, name="job_status"),
    path("migrations/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
]
