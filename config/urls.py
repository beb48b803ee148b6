from django.contrib import admin
from django.urls import include, path

from core.views import AuditListView, dashboard

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("", include("ops.urls")),
    path("audit/", AuditListView.as_view(), name="audit_list"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("config.api_urls")),
    path("ovirt-engine/", include("ovirt_api.urls")),
    path("", include("clusters.urls")),
    path("", include("policies.urls")),
    path("", include("migrations_app.urls")),
]

# Under /api/, every error body is JSON (core.errors); elsewhere the templates/4xx.html pages.
handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
