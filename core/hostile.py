"""Hostile input stops at the door: control characters in a URL, a query or a form, and JSON nested
deeper than any Ferry document, are a 400 before a view, a lookup or the database sees them.

Tab, line feed and carriage return stay allowed in form fields (a description has lines); every
other C0 control character and DEL is refused. Names refuse more (core.names).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import HttpRequest, HttpResponse

from core.errors import HostileInput, bad_request

# Deeper than any document Ferry reads (a convergence schedule is 4 levels deep), shallow enough
# that nothing that walks a stored value recursively can run out of stack.
MAX_JSON_DEPTH = 32
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_IN_URL = re.compile(r"[\x00-\x1f\x7f]")


class JSONTooDeep(ValueError):
    pass


def loads(text: str | bytes, *, parse_constant: Any = None) -> Any:
    """json.loads that refuses (JSONTooDeep, a ValueError) nesting deeper than MAX_JSON_DEPTH instead
    of running out of stack. A NUL in a string is left to the field that reads it (text fields refuse
    it; JSON fields are held to a structure of their own), as the API's schema lets any other
    property through unread."""
    try:
        value = json.loads(text, parse_constant=parse_constant)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
    check_json(value)
    return value


def check_json(value: Any) -> None:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise JSONTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def _refused(where: str) -> HostileInput:
    return HostileInput(f"A control character in the {where} is not allowed.")


class RefuseControlCharactersMiddleware:
    """400 for control characters in the path, in a query parameter's name or value, or in a
    form field (tab and line breaks excepted there)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if CONTROL_IN_URL.search(request.path):
            raise _refused("URL")
        for name, values in request.GET.lists():
            if CONTROL_IN_URL.search(name) or any(CONTROL_IN_URL.search(value) for value in values):
                raise _refused("query parameter " + repr(CONTROL_IN_URL.sub("?", name)))
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            for name, values in request.POST.lists():
                if CONTROL.search(name) or any(CONTROL.search(value) for value in values):
                    raise _refused("form field " + repr(CONTROL.sub("?", name)))
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view that ran out of stack on what it was sent (JSON nested deep in a form field that
        Ferry does not parse itself, such as an admin's JSON field) answers 400, not 500."""
        if isinstance(exception, RecursionError):
            return bad_request(request, HostileInput("The input is nested too deeply."))
        return None
