"""The REST API under /api/: each app's router, the OpenAPI schema and the Swagger UI (served locally)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer

from core.api.views import ApiRootView


def not_found(request, path=""):
    """Under /api/, even a URL that matches nothing answers in JSON."""
    return JsonResponse({"detail": "Not found."}, status=404)


class JSONErrors:
    """Errors in JSON, like the rest of the API, from views whose own renderer is YAML or HTML."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)  # type: ignore[misc]
        self.request.accepted_renderer = JSONRenderer()  # type: ignore[attr-defined]
        self.request.accepted_media_type = "application/json"  # type: ignore[attr-defined]
        return response


class SchemaView(JSONErrors, SpectacularAPIView):
    pass


class SwaggerView(JSONErrors, SpectacularSwaggerSplitView):
    """Its script from a URL of its own (?script), not inline: the content security policy allows no inline script."""


urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    # The agent API: agent tokens only, and out of the public schema (docs/agent-api.md).
    path("agent/", include("migrations_app.api.agent_urls")),
    path("", include("clusters.api.urls")),
    path("", include("clusters.api.policy_urls")),
    path("", include("migrations_app.api.urls")),
    path("", include("core.api.urls")),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    # A browser that is not logged in is sent to the login page, then back here.
    path("docs/", login_required(SwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    re_path(r"^(?P<path>.*)$", not_found),
]
