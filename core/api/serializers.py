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
from core.models import ApiToken, AuditEntry
from core.tokens import EXPIRES_DAYS_MAX

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


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it in lists: never the key, only its first characters (prefix)."""

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created", "expires", "last_used"]
        read_only_fields = fields


class AdminApiTokenSerializer(serializers.ModelSerializer):
    """Anyone's token as an admin sees it: whose it is, never the key."""

    user = serializers.CharField(source="user.get_username", read_only=True, help_text="The owner's username.")

    class Meta:
        model = ApiToken
        fields = ["id", "user", "name", "prefix", "created", "expires", "last_used"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, validators=[ONE_LINE], help_text="What the token is for; unique per user.")
    expires = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the token stops working (ISO 8601); omit for never."
    )
    expires_days = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=EXPIRES_DAYS_MAX,
        write_only=True,
        help_text="Or: the number of days from now after which the token stops working.",
    )


class NewApiTokenSerializer(serializers.Serializer):
    """The answer to a create: the only time the key is shown."""

    id = serializers.UUIDField(source="token.id", read_only=True)
    name = serializers.CharField(source="token.name", read_only=True)
    key = serializers.CharField(read_only=True, help_text="Shown only now: Ferry stores only its hash.")
    created = serializers.DateTimeField(source="token.created", read_only=True)
    expires = serializers.DateTimeField(source="token.expires", read_only=True, allow_null=True)
