"""Limit/offset pagination that refuses what it cannot read, instead of quietly using a default,
and does not count every row of a large table for each page (core.counting)."""

from __future__ import annotations

import re

from rest_framework import pagination, serializers
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from core.counting import list_count

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

    count_is_estimate = False

    def get_count(self, queryset) -> int:
        counted = list_count(queryset)
        self.count_is_estimate = counted.estimated
        return counted.value

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.count = self.get_count(queryset)
        self.offset = self.get_offset(request)
        if not self.count_is_estimate:
            if self.count == 0 or self.offset > self.count:
                return []
            return list(queryset[self.offset : self.offset + self.limit])
        # An estimate may be short of the real count: the page and its next link come from the rows
        # themselves (one row more than the limit says whether there is a next page).
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_more = len(rows) > self.limit
        return rows[: self.limit]

    def get_next_link(self):
        if self.count_is_estimate and not self.has_more:
            return None
        if self.count_is_estimate:
            # The base class stops at the count; past an estimate, the rows decide.
            if self.request is None or self.limit is None or self.offset is None:  # not paginated
                return None
            url = self.request.build_absolute_uri()
            url = replace_query_param(url, self.limit_query_param, self.limit)
            return replace_query_param(url, self.offset_query_param, self.offset + self.limit)
        return super().get_next_link()

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_is_estimate": self.count_is_estimate,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            },
            headers={"X-Count-Is-Estimate": "true"} if self.count_is_estimate else None,
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"]["description"] = (
            "The number of results. Exact, unless count_is_estimate is true: then it is PostgreSQL's "
            "estimate of an unfiltered list's rows (large tables only); any filter gives an exact count."
        )
        response["properties"] = {
            "count": response["properties"]["count"],
            "count_is_estimate": {
                "type": "boolean",
                "description": "True when count is an estimate (an unfiltered list of a large table).",
            },
            **{k: v for k, v in response["properties"].items() if k != "count"},
        }
        response["required"] = ["count", "count_is_estimate", "results"]
        return response

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
