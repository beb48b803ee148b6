import datetime
import re

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.models import ApiToken, AuditEntry

# RFC 3339, as OpenAPI's date-time: a date, a time and an offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class _RawNullBooleanSelect(forms.NullBooleanSelect):
    """Hands the field the submitted text, so that a value other than true/false/unknown is an error
    rather than silently no filter."""

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class StrictNullBooleanField(forms.NullBooleanField):
    widget = _RawNullBooleanSelect
    default_error_messages = {"invalid": "Enter true, false or unknown."}
    VALUES = {None: None, "": None, "unknown": None, "true": True, "false": False, True: True, False: False}

    def to_python(self, value):
        try:
            return self.VALUES[value]
        except (KeyError, TypeError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None

    def validate(self, value):
        pass


@extend_schema_field({"type": "string", "enum": ["true", "false", "unknown"]})
class StrictBooleanFilter(django_filters.BooleanFilter):
    """true or false; empty or "unknown" (what the list pages' select sends) means no filter."""

    field_class = StrictNullBooleanField


class StrictDateTimeField(forms.DateTimeField):
    default_error_messages = {"invalid": "Enter a date-time such as 2026-01-31T12:00:00Z (RFC 3339)."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            # In UTC: PostgreSQL takes offsets up to 15:59 only, RFC 3339 up to 23:59.
            parsed = parse_datetime(value.upper())
            if parsed is None:  # not reached: parse_datetime reads all that RFC3339 matches
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            return parsed.astimezone(datetime.UTC)
        except (ValueError, OverflowError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class StrictDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StrictDateTimeField


class StrictUUIDField(forms.UUIDField):
    def to_python(self, value):
        if value not in self.empty_values and (not isinstance(value, str) or not UUID.fullmatch(value)):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class StrictUUIDFilter(django_filters.UUIDFilter):
    field_class = StrictUUIDField


# A related table with up to this many rows is ranked in the ORDER BY rather than joined.
RANKED_MAX = 100


class StableOrderingFilter(django_filters.OrderingFilter):
    """`?ordering=<field>` or `-<field>` (comma-separated for more than one) over a list's columns.

    Ties are broken by id, in the direction of the last column, so that a page boundary falls in
    the same place on every request and a descending sort reads a (column, id) index backwards
    instead of sorting every row. An unknown field is a 400 (the API) or a form error (the pages),
    never silently ignored.
    """

    def __init__(self, *args, ranked: dict[str, tuple[str, str]] | None = None, **kwargs):
        """`ranked`: orderings by a small related table's column ({"policy__name": ("policy", "name")}),
        sorted by the related rows' rank instead of through a join (see _ranked)."""
        kwargs.setdefault("label", "Order by")
        kwargs.setdefault(
            "help_text", "A column, or -column for descending; ties are ordered by id, in the same direction."
        )
        self.ranked = ranked or {}
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in django_filters.constants.EMPTY_VALUES:
            return qs
        ordering = [self._ranked(qs, self.get_ordering_value(param)) for param in value]
        descending = str(ordering[-1]).startswith("-") or getattr(ordering[-1], "descending", False)
        return qs.order_by(*ordering, "-pk" if descending else "pk")

    def _ranked(self, qs, ordering: str):
        """An order by a related table's column, as the rank of the row's foreign key among the
        related rows (few: policies). Ordering through the join made PostgreSQL join and sort every
        row of a large table (200,000 VMs, most with no policy); the rank is a value of the row
        itself, so the page's joins come after the sort. Rows without one come last, as through
        the join. A related table too large to rank is ordered through the join."""
        descending = ordering.startswith("-")
        spec = self.ranked.get(ordering.lstrip("-"))
        if spec is None:
            return ordering
        foreign_key, column = spec
        related = qs.model._meta.get_field(foreign_key).related_model._default_manager
        ids = list(related.order_by(column, "pk").values_list("pk", flat=True)[: RANKED_MAX + 1])
        if len(ids) > RANKED_MAX:
            return ordering
        rank = Case(
            *[When(**{f"{foreign_key}_id": pk}, then=Value(i)) for i, pk in enumerate(ids)],
            default=Value(len(ids)),
            output_field=IntegerField(),
        )
        return rank.desc() if descending else rank.asc()


class AuditEntryFilterSet(django_filters.FilterSet):
    at_after = StrictDateTimeFilter(field_name="at", lookup_expr="gte")
    at_before = StrictDateTimeFilter(field_name="at", lookup_expr="lt")
    ordering = StableOrderingFilter(fields=["at", "actor", "action", "object_type"])

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "object_id"]


class ApiTokenFilterSet(django_filters.FilterSet):
    ordering = StableOrderingFilter(fields=["name", "created", "expires", "last_used"])

    class Meta:
        model = ApiToken
        fields = ["name"]


class AdminApiTokenFilterSet(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="user__username", help_text="The owner's username.")
    ordering = StableOrderingFilter(fields=["name", "created", "expires", "last_used"])

    class Meta:
        model = ApiToken
        fields = ["name"]


class AuditPageFilterSet(AuditEntryFilterSet):
    """The audit page's filters: the API's, with the object types as a choice and the times as the
    browser's date-time inputs (in the server's time zone)."""

    object_type = django_filters.ChoiceFilter(
        choices=[
            ("cluster", "Cluster"),
            ("host", "Host"),
            ("vm", "VM"),
            ("migrationpolicy", "Migration policy"),
            ("migrationjob", "Migration"),
            ("clusterlevel", "Compatibility level"),
            ("token", "API token"),
        ],
        label="Object type",
        empty_label="Any",
    )
    actor = django_filters.CharFilter(label="Who")
    action = django_filters.CharFilter(label="Action")
    at_after = django_filters.DateTimeFilter(
        field_name="at",
        lookup_expr="gte",
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    at_before = django_filters.DateTimeFilter(
        field_name="at",
        lookup_expr="lt",
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta(AuditEntryFilterSet.Meta):
        fields = ["object_type", "actor", "action"]
