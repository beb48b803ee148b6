"""Login lockout (django-axes): the client's address, the answer to a locked-out login, and its audit entry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.models import AuditEntry
from ferry_common import logs

LOCKED_OUT_ACTION = "login_locked_out"


def client_address(request: HttpRequest) -> str:
    """The peer's address; behind Ferry's reverse proxy (FERRY_BEHIND_PROXY), the address the
    proxy saw, which is the last one it added to X-Forwarded-For."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.FERRY_BEHIND_PROXY and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def lockout_message() -> str:
    minutes = max(1, round(settings.FERRY_LOGIN_COOLOFF_S / 60))
    return (
        f"Too many failed logins for this username from your address: logging in is blocked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. An admin can lift the block sooner."
    )


#: What a username can be (Django's User.username); axes records at most 255 characters.
USERNAME_MAX = 150


def login_username(request: HttpRequest, credentials: Any) -> str | None:
    """The username a failed login is counted under: as sent, cut to what a username can be, so
    that an over-long one is counted (and locked out) rather than failing to be stored."""
    value = None
    if isinstance(credentials, dict):
        value = credentials.get("username")
    if value is None and request is not None and request.method == "POST":
        value = request.POST.get("username")
    return None if value is None else str(value)[:USERNAME_MAX]


def login_locked_out(request: HttpRequest, response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """django-axes' answer to a login it refused: 429 with the login page and the reason (JSON for
    the API and for the oVirt-compatible SSO, as their other errors are)."""
    message = lockout_message()
    retry_after = str(settings.FERRY_LOGIN_COOLOFF_S)
    if request.path.startswith(("/api/", "/ovirt-engine/")):
        body = {"detail": message, "error_code": "locked_out", "error": message}
        answer: HttpResponse = JsonResponse(body, status=429)
    else:
        answer = render(request, "registration/locked_out.html", {"message": message}, status=429)
    answer["Retry-After"] = retry_after
    return answer


def _on_user_locked_out(sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs):
    """The lockout in Ferry's audit log: who was locked out, from where, through which login."""
    name = (username or "")[:150]
    user = get_user_model().objects.filter(username=name).first() if name else None
    AuditEntry.objects.create(
        actor=name or "anonymous",
        user=user,
        action=LOCKED_OUT_ACTION,
        object_type="user",
        object_id=str(user.pk) if user is not None else "",
        object_repr=name,
        before=None,
        after={
            "ip_address": ip_address or "",
            "path": request.path[:200] if request is not None else "",
            "failure_limit": settings.FERRY_LOGIN_FAILURE_LIMIT,
            "cooloff_s": settings.FERRY_LOGIN_COOLOFF_S,
        },
        request_id=logs.current()["request_id"] or "",
    )


def connect_signals() -> None:
    from axes.signals import user_locked_out

    receiver(user_locked_out, dispatch_uid="ferry-audit-lockout")(_on_user_locked_out)


def _over_limit(key: str, limit: int, window_s: int) -> bool:
    """Count one more event under `key` in the cache for `window_s` seconds; True past `limit`."""
    from django.core.cache import cache

    cache.add(key, 0, timeout=window_s)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window_s)
        count = 1
    return count > limit


def password_reset_guard(view):
    """The password reset pages exist only when Ferry can send mail (FERRY_EMAIL_HOST); a reset
    request counts against FERRY_PASSWORD_RESET_LIMIT per hour, per client address and per address
    asked for, so the form neither floods a mailbox nor probes accounts at speed."""
    from functools import wraps

    from django.http import Http404

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.FERRY_EMAIL_HOST:
            raise Http404("Password reset needs a mail server (FERRY_EMAIL_HOST).")
        if request.method == "POST":
            limit, window = settings.FERRY_PASSWORD_RESET_LIMIT, 3600
            email = request.POST.get("email", "").strip().lower()[:254]
            if _over_limit(f"ferry-reset-ip:{client_address(request)}", limit, window) or (
                email and _over_limit(f"ferry-reset-email:{email}", limit, window)
            ):
                message = "Too many password reset requests: try again in an hour."
                answer = render(request, "registration/locked_out.html", {"message": message}, status=429)
                answer["Retry-After"] = str(window)
                return answer
        return view(request, *args, **kwargs)

    return guarded
