"""Limit/offset pagination that refuses what it cannot read, instead of quietly using a default."""

from __future__ import annotations

import re

from rest_framework import pagination, serializers

MAX_LIMIT = 1000
MAX_OFFSET = 2_147_483_647
_WHOLE_NUMBER = re.compile(r"0|[1-9][0-9]{0,9}")


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _parameter(self, request, name: str, *, minimum: int, maximum: int, default: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not _WHOLE_NUMBER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
            raise serializers.ValidationError({name: [f"Enter a whole number from {minimum} to {maximum}."]})
        return int(raw)

    def get_limit(self, request):
        return self._parameter(
            request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request):
        return self._parameter(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
