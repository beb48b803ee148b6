"""Reads of migration policies."""

from django.db.models import QuerySet

from policies.models import MigrationPolicy


def policy_list() -> QuerySet[MigrationPolicy]:
    return MigrationPolicy.objects.all()


def policies_offered_at(*, level: str, parallel_supported: bool) -> list[MigrationPolicy]:
    """The policies a cluster at this level may choose, in display order."""
    return [p for p in policy_list() if p.is_offered_at(level=level, parallel_supported=parallel_supported)]
