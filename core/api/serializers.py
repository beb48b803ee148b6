"""Base serializers: strict JSON types in, model field names out.

Serializers check types and shape only. Every write goes through a service, which runs the
model's full_clean in the same transaction as the write and its audit record, so model rules
(cross-field checks, policies offered at a level) reach the client as field messages through
core.api.exceptions, the same messages the forms and the admin show.
"""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from core.api.fields import (
    NO_NUL,
    ONE_LINE,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictPrimaryKeyRelatedField,
    StrictUUIDField,
)
from core.models import AuditEntry

_STRICT = {
    serializers.CharField: StrictCharField,
    serializers.IntegerField: StrictIntegerField,
    serializers.BooleanField: StrictBooleanField,
    serializers.UUIDField: StrictUUIDField,
}


class FerryModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        model_field: _STRICT.get(field, field)
        for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
    }
    serializer_related_field = StrictPrimaryKeyRelatedField
    serializer_choice_field = StrictChoiceField

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, StrictCharField) and "choices" not in field_kwargs:
            text = isinstance(model_field, models.TextField)
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), NO_NUL if text else ONE_LINE]
        return field_class, field_kwargs


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "request_id",
        ]
        read_only_fields = fields
