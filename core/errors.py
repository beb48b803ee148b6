"""Error pages, and under /api/ error bodies in JSON whatever went wrong, even outside DRF (a URL that
matches nothing, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a control character refused by
core.hostile, a crash)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import requires_csrf_token


class HostileInput(SuspiciousOperation):
    """A request Ferry refuses outright (core.hostile), answered with 400 (JSON under /api/)."""


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _json(detail: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        if is_api(request):
            return _json("The request body is too large.", 413)
        return defaults.bad_request(request, exception)
    if is_api(request):
        if isinstance(exception, HostileInput | TooManyFieldsSent):
            return _json(str(exception), 400)
        return _json("Bad request.", 400)
    return defaults.bad_request(request, exception)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json("You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json("Not found.", 404)
    return defaults.page_not_found(request, exception)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return _json("Server error: Ferry logged it.", 500)
    return defaults.server_error(request)
