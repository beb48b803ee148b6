"""Optimistic concurrency over HTTP: ETag "<version>" out, If-Match in.

A PUT, PATCH or DELETE with If-Match is applied only if the stored version is still one of the
tags given (weak tags W/"n" are accepted too); the service's conditional UPDATE makes that hold
under concurrency, and a mismatch answers 412. `If-Match: *` and no If-Match at all mean "any
version". A malformed If-Match answers 400: a client that meant to guard its write but sent
something unreadable must not have the write go through unguarded.
"""

from __future__ import annotations

import re

from rest_framework import serializers
from rest_framework.views import APIView

# The value is bounded so that a stored version (a 32-bit integer) can always be compared.
ENTITY_TAG = r'(W/)?"[0-9]{1,9}"'
IF_MATCH_PATTERN = rf"^[ \t]*(\*|{ENTITY_TAG}([ \t]*,[ \t]*{ENTITY_TAG})*)[ \t]*$"
_TAG = re.compile(r'[ \t]*(?:W/)?"([0-9]{1,9})"[ \t]*')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_versions(header: str | None) -> list[int] | None:
    """The versions an If-Match header allows, or None for "any" (no header, or *)."""
    if header is None or header.strip(" \t") == "*":
        return None
    versions = []
    for tag in header.split(","):
        match = _TAG.fullmatch(tag)
        if match is None:
            raise serializers.ValidationError(
                {"If-Match": ['If-Match takes the ETag of the version you edited, such as "3", or *.']}
            )
        versions.append(int(match.group(1)))
    return versions


class ETagMixin(APIView):
    """Sets ETag on every single-object response of a versioned model, and reads If-Match."""

    def expected_version(self, instance) -> int | None:
        versions = if_match_versions(self.request.headers.get("If-Match"))
        if versions is None:
            return None
        current = getattr(instance, "version", None)
        # With several tags, the one that still matches is the one to hold the write to.
        return current if current in versions else versions[0]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if 200 <= response.status_code < 300 and isinstance(data, dict) and isinstance(data.get("version"), int):
            response["ETag"] = etag(data["version"])
        return response
