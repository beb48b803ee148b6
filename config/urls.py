from django.contrib import admin
from django.urls import include, path

from core.views import ApiTokenListView, ApiTokenRevokeView, AuditListView, dashboard

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("", include("ops.urls")),
    path("audit/", AuditListView.as_view(), name="audit_list"),
    path("tokens/", ApiTokenListView.as_view(), name="token_list"),
    path("tokens/<uuid:pk>/revoke/", ApiTokenRevokeView.as_view(), name="token_revoke"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("config.api_urls")),
    path("ovirt-engine/", include("ovirt_api.urls")),
    path("", include("clusters.urls")),
    path("", include("policies.urls")),
    path("", include("migrations_app.urls")),
]
