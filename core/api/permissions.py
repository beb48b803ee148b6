"""Who may call the API: every request needs a login; reads need view_<model>, writes the model permission."""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also guards reads.

    A view's custom actions name their permissions in `action_permissions`, e.g.
    {"migrate": ["migrations_app.add_migrationjob"]}; writes need what the view's model services
    name for them; other requests map by method.
    """

    writes = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is not None:
            return request.user.has_perms(required)
        services = getattr(view, "services", None)
        if services is not None and request.method in self.writes:
            return request.user.has_perm(services.permission(self.writes[request.method]))
        return super().has_permission(request, view)
