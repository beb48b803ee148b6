from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from core.security import password_reset_guard
from core.views import ApiTokenListView, ApiTokenRevokeView, AuditListView
from migrations_app.views import dashboard

# Password reset only with a mail server, and throttled (core.security.password_reset_guard).
password_reset = [
    path("password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
for pattern in password_reset:
    pattern.callback = password_reset_guard(pattern.callback)

urlpatterns = [
    path("", dashboard, name="dashboard"),
    # Pages that do not link the icon themselves (Django admin, the API's browsable pages) get it too.
    path("favicon.ico", RedirectView.as_view(url=static("ferry/favicon.svg"), permanent=True)),
    path("", include("ops.urls")),
    path("audit/", AuditListView.as_view(), name="audit_list"),
    path("tokens/", ApiTokenListView.as_view(), name="token_list"),
    path("tokens/<uuid:pk>/revoke/", ApiTokenRevokeView.as_view(), name="token_revoke"),
    path("admin/", admin.site.urls),
    path("accounts/", include(password_reset)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("config.api_urls")),
    path("ovirt-engine/", include("ovirt_api.urls")),
    path("", include("migrations_app.estate_urls")),
    path("", include("clusters.policy_urls")),
    path("", include("migrations_app.urls")),
]

# Under /api/, every error body is JSON (core.errors); elsewhere the templates/4xx.html pages.
handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
