"""The OpenAPI schema says everything the API may answer: error statuses, ETag and If-Match.

drf-spectacular documents only the success response; scripts (and the fuzzing tests) also need
the errors each operation can return, and the concurrency headers of versioned resources.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from core.api.etag import IF_MATCH_PATTERN

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# What core.hostile lets through in a URL: no control character.
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
VERSIONED_WRITES = ("PUT", "PATCH", "DELETE")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class StaleVersionSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expected_version = serializers.IntegerField()
    current_version = serializers.IntegerField(allow_null=True)
    differences = serializers.DictField(
        help_text="Each field you sent whose stored value is now different: {submitted, current}."
    )
    current = serializers.DictField(required=False, help_text="The stored object, as GET returns it.")


VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Invalid input: an object mapping each field (or non_field_errors, or a query parameter) "
    "to its messages.",
)


def _detail(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


class FerryAutoSchema(AutoSchema):
    def _is_versioned(self) -> bool:
        queryset = getattr(self.view, "queryset", None)
        if queryset is None:
            return False
        return any(field.name == "version" for field in queryset.model._meta.concrete_fields)

    def _has_lookup(self) -> bool:
        return "{" in self.path

    def _returns_object(self) -> bool:
        return self.method in ("GET", "PUT", "PATCH", "POST") and not self._is_list_view()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if not self._is_versioned() or getattr(self.view, "action", None) not in (
            "retrieve",
            "create",
            "update",
            "partial_update",
            "destroy",
        ):
            return parameters
        if self.method in VERSIONED_WRITES:
            parameters.append(
                OpenApiParameter(
                    "If-Match",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    pattern=IF_MATCH_PATTERN,
                    description='Apply the change only if the stored version is this ETag ("3"; W/ is accepted; '
                    "* or no header: any version). A stale ETag answers 412; a malformed one 400.",
                )
            )
        if self.method != "DELETE":
            parameters.append(
                OpenApiParameter(
                    "ETag",
                    {"type": "string", "pattern": r'^"[0-9]+"$'},
                    OpenApiParameter.HEADER,
                    response=[200, 201],
                    required=True,
                    description='The version of the object, "<version>"; send it back in If-Match.',
                )
            )
        return parameters

    def _get_filter_parameters(self):
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            # An empty single-value filter means "no filter", as the list pages' forms send it.
            if schema.get("type") != "array":
                parameter["allowEmptyValue"] = True
            # Control characters in a URL are refused before any view (core.hostile).
            text = schema.get("items", {}) if schema.get("type") == "array" else schema
            if text.get("type") == "string" and not {"format", "enum", "pattern"} & set(text):
                text["pattern"] = NO_CONTROL_PATTERN
        return parameters

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors = {
            "401": _detail("Not logged in: send a session cookie or `Authorization: Token <key>`."),
            "403": _detail("You lack the permission this request needs, or the object is read-only."),
        }
        if self.method in WRITE_METHODS or self.method == "GET":
            errors["400"] = VALIDATION_ERROR
        if self._has_lookup():
            errors["404"] = _detail("No such object.")
        if self.method in WRITE_METHODS:
            errors["409"] = _detail("The change conflicts with the current state (e.g. an active migration).")
        if self.method in VERSIONED_WRITES and self._is_versioned() and self._has_lookup():
            errors["412"] = OpenApiResponse(
                response=StaleVersionSerializer, description="If-Match is stale: someone saved in between."
            )
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses


def refuse_control_characters_in_urls(result, generator, request, public):
    """drf-spectacular postprocessing hook: every free-text path or query parameter says that a
    control character is refused (core.hostile answers 400 before any view)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") not in ("path", "query"):
                    continue
                schema = parameter.get("schema", {})
                text = schema.get("items", {}) if schema.get("type") == "array" else schema
                if text.get("type") != "string":
                    continue
                if text.get("pattern") == "^[^/]+$":  # ListFilterMixin.lookup_value_regex
                    text["pattern"] = "^[^/\\u0000-\\u001f\\u007f]+$"
                elif not {"format", "enum", "pattern"} & set(text):
                    text["pattern"] = NO_CONTROL_PATTERN
    return result


def names_without_control_characters(result, generator, request, public):
    """drf-spectacular postprocessing hook: the name a cluster, host or VM write accepts
    (core.names.validate_name) as a pattern."""
    from core.names import name_pattern

    for component, schema in result.get("components", {}).get("schemas", {}).items():
        if component.removeprefix("Patched") in ("ClusterRequest", "HostRequest", "VMRequest"):
            name = schema.get("properties", {}).get("name")
            if name is not None and name.get("type") == "string":
                name["pattern"] = name_pattern()
    return result
