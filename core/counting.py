"""How many rows a list has, without counting every row of a large table for each page.

An unfiltered list of a large table on PostgreSQL takes the planner's estimate of the table's rows
(pg_class.reltuples, kept by autovacuum and ANALYZE): COUNT(*) over 200,000 VMs reads every row on
every page, the estimate is one catalogue lookup. Everything else is counted exactly: a filtered
list (the estimate of a filter can be far off, and such lists are what scripts count), a small
table (below FERRY_EXACT_COUNT_MAX rows an exact count is cheap), and SQLite (no estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

DEFAULT_EXACT_COUNT_MAX = 10_000


@dataclass(frozen=True)
class RowCount:
    value: int
    estimated: bool


def exact_count_max() -> int:
    return int(getattr(settings, "FERRY_EXACT_COUNT_MAX", DEFAULT_EXACT_COUNT_MAX))


def _unfiltered(queryset: QuerySet) -> bool:
    """No condition, no slice, no DISTINCT: one row per row of the table. Aggregate annotations
    (a host's VM count) join outward and group by the row, which keeps that true; a condition on
    them would be in `where` too."""
    query = queryset.query
    return (
        not query.where
        and not query.distinct
        and not query.combinator
        and query.low_mark == 0
        and query.high_mark is None
    )


def _table_estimate(queryset: QuerySet) -> int | None:
    """The planner's row estimate of the queryset's table; None when it has none (never analysed)."""
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None or row[0] < 0 else int(row[0])


def list_count(queryset: QuerySet) -> RowCount:
    """The number of rows of a list: estimated for an unfiltered large table on PostgreSQL, else exact."""
    if connections[queryset.db].vendor == "postgresql" and _unfiltered(queryset):
        estimate = _table_estimate(queryset)
        if estimate is not None and estimate > exact_count_max():
            return RowCount(estimate, estimated=True)
    return RowCount(queryset.count(), estimated=False)


class EstimatedCountPaginator(Paginator):
    """Django's Paginator over list_count(): page numbers from an estimate on large unfiltered lists."""

    @cached_property
    def row_count(self) -> RowCount:
        rows = self.object_list
        return list_count(rows) if isinstance(rows, QuerySet) else RowCount(len(rows), estimated=False)

    @cached_property
    def count(self) -> int:
        return self.row_count.value

    @property
    def count_is_estimate(self) -> bool:
        return self.row_count.estimated


def subquery_count(related: QuerySet, field: str) -> Coalesce:
    """The number of `related` rows whose `field` is the outer row, as a correlated subquery.

    Unlike Count() over a join, it is computed for the rows of the page only, not for every row of
    the table before the page is cut (1,000 clusters' VMs summed to show 50 clusters).
    """
    counted = (
        related.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(count=Count("*")).values("count")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)
