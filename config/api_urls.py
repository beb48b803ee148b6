"""The REST API under /api/: each app's router, the OpenAPI schema and the Swagger UI (served locally)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def not_found(request, path=""):
    """Under /api/, even a URL that matches nothing answers in JSON."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    # The agent API: agent tokens only, and out of the public schema (docs/agent-api.md).
    path("agent/", include("migrations_app.api.agent_urls")),
    path("", include("clusters.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("migrations_app.api.urls")),
    path("", include("core.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A browser that is not logged in is sent to the login page, then back here.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    re_path(r"^(?P<path>.*)$", not_found),
]
