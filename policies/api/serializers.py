from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import StrictCharField, StrictChoiceField, StrictIntegerField
from core.api.serializers import FerryModelSerializer
from policies.convergence import ACTIONS, MAX_DOWNTIME_MS
from policies.models import MigrationPolicy

# 1..600000 ms, written as the schedule stores it ("400"): the same rule as policies.convergence.
DOWNTIME_PATTERN = r"^([1-9][0-9]{0,4}|[1-5][0-9]{5}|600000)$"
DOWNTIME_MS = RegexValidator(DOWNTIME_PATTERN[:-1] + r"\Z", f"A downtime is 1..{MAX_DOWNTIME_MS} ms, such as 400.")
NO_PARAMS_ACTIONS = tuple(action for action in ACTIONS if action != "setDowntime")
ACTION_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "description": "Set the maximum downtime, in ms.",
            "properties": {
                "name": {"type": "string", "enum": ["setDowntime"]},
                "params": {
                    "type": "array",
                    "items": {"type": "string", "pattern": DOWNTIME_PATTERN},
                    "minItems": 1,
                    "maxItems": 1,
                },
            },
            "required": ["name", "params"],
        },
        {
            "type": "object",
            "description": "Switch to post-copy, or abort the migration.",
            "properties": {
                "name": {"type": "string", "enum": list(NO_PARAMS_ACTIONS)},
                "params": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
            },
            "required": ["name"],
        },
    ]
}


class ConvergenceActionSerializer(serializers.Serializer):
    name = StrictChoiceField(choices=ACTIONS)
    params = serializers.ListField(child=StrictCharField(validators=[DOWNTIME_MS]), required=False)

    def validate(self, attrs):
        params = attrs.get("params", [])
        if attrs["name"] == "setDowntime" and len(params) != 1:
            raise serializers.ValidationError({"params": ["setDowntime takes one parameter, the downtime in ms."]})
        if attrs["name"] != "setDowntime" and params:
            raise serializers.ValidationError({"params": [f"{attrs['name']} takes no parameters."]})
        return {"name": attrs["name"], "params": params}


@extend_schema_field(ACTION_SCHEMA)
class ConvergenceActionField(serializers.Field):
    """An action, documented as the exact shape each action name takes."""

    def to_internal_value(self, data):
        action = ConvergenceActionSerializer(data=data)
        if not action.is_valid():
            raise serializers.ValidationError(action.errors)
        return action.validated_data

    def to_representation(self, value):
        return {"name": value["name"], "params": list(value.get("params", []))}


class StallingStepSerializer(serializers.Serializer):
    limit = StrictIntegerField(min_value=1, max_value=1_000_000, help_text="Memory iterations; increasing.")
    action = ConvergenceActionField()


class ConvergenceSerializer(serializers.Serializer):
    """A policy's downtime schedule: the initial downtime, steps when stalling, then the last actions."""

    initial = StrictIntegerField(min_value=1, max_value=MAX_DOWNTIME_MS, allow_null=True, required=False)
    stalling = serializers.ListField(child=StallingStepSerializer(), required=False, max_length=100)
    last = serializers.ListField(child=ConvergenceActionField(), required=False, max_length=100)

    def validate(self, attrs):
        """The whole schedule: a part left out is empty (no initial downtime, no steps)."""
        return {"initial": attrs.get("initial"), "stalling": attrs.get("stalling", []), "last": attrs.get("last", [])}


class MigrationPolicySerializer(FerryModelSerializer):
    convergence = ConvergenceSerializer(required=False)

    class Meta:
        model = MigrationPolicy
        fields = [
            "id",
            "name",
            "description",
            "builtin",
            "max_migrations",
            "auto_convergence",
            "migration_compression",
            "enable_guest_events",
            "zerocopy",
            "convergence",
            "version",
        ]
        read_only_fields = ["id", "builtin", "version"]
