"""Every error is JSON with field messages, and bad input never becomes a 5xx.

Services speak Django (ValidationError, PermissionDenied) and Ferry (StaleVersion,
ConflictError, such as migrations_app.services.MigrationConflict); this handler turns them into the API's statuses:
ValidationError -> 400 {field: [messages]} (model-wide messages under non_field_errors),
PermissionDenied -> 403, StaleVersion -> 412 with the stored version and what differs,
ConflictError and IntegrityError -> 409, ProtectedError -> 400. A request refused for want of
valid credentials counts against the anonymous rate of its address (core.api.throttling), so that
guessing tokens is throttled as well: DRF checks throttles only after authentication and permissions.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from core.rules import Rule
from core.services import ConflictError, StaleVersion


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource was changed by someone else."
    default_code = "precondition_failed"


def field_messages(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
            for field, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


def field_errors(error: DjangoValidationError) -> dict[str, list[ErrorDetail]]:
    """field_messages, each message keeping its code (a model rule's is in core.rules)."""

    def details(errors: list[DjangoValidationError]) -> list[ErrorDetail]:
        return [ErrorDetail(message, code=item.code) for item in errors for message in item.messages]

    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): details(errors)
            for field, errors in error.error_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: details(error.error_list)}


def stale_details(error: StaleVersion, context: dict[str, Any]) -> dict[str, Any]:
    """What the client needs to redo its edit: the stored version and where its data disagrees."""
    body: dict[str, Any] = {"detail": str(error), "expected_version": error.expected}
    current = error.current
    if current is None:
        body |= {"current_version": None, "differences": {}}
        return body
    body["current_version"] = getattr(current, "version", None)
    view, request = context.get("view"), context.get("request")
    differences: dict[str, Any] = {}
    if view is not None and request is not None and hasattr(view, "get_serializer"):
        stored = view.get_serializer(current).data
        submitted = request.data if isinstance(request.data, dict) else {}
        for name, value in submitted.items():
            if name in stored and stored[name] != value:
                differences[name] = {"submitted": value, "current": stored[name]}
        body["current"] = stored
    body["differences"] = differences
    return body


def _throttled_refusal(exc: exceptions.APIException, context: dict[str, Any]) -> exceptions.APIException:
    from core.api.throttling import AnonThrottle

    request, view, throttle = context.get("request"), context.get("view"), AnonThrottle()
    if request is not None and view is not None and not throttle.allow_request(request, view):
        return exceptions.Throttled(throttle.wait())
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, StaleVersion):
        return Response(stale_details(exc, context), status=status.HTTP_412_PRECONDITION_FAILED)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, ConflictError):
        exc = Conflict(str(exc))
    elif isinstance(exc, ProtectedError):
        exc = exceptions.ValidationError(
            {
                api_settings.NON_FIELD_ERRORS_KEY: [
                    ErrorDetail("This object is still in use and cannot be deleted.", Rule.IN_USE)
                ]
            }
        )
    elif isinstance(exc, RequestDataTooBig):
        from core.api.parsers import RequestTooLarge

        exc = RequestTooLarge()
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc = _throttled_refusal(exc, context)
    elif isinstance(exc, IntegrityError):
        # A database constraint caught what validation could not see (a concurrent writer).
        exc = Conflict("The change conflicts with another one saved at the same time; reload and try again.")
    return drf_exception_handler(exc, context)
