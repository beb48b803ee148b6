from django.core.validators import RegexValidator
from rest_framework import serializers

from core.api.fields import StrictCharField, StrictChoiceField, StrictIntegerField
from core.api.serializers import FerryModelSerializer
from policies.convergence import ACTIONS, MAX_DOWNTIME_MS
from policies.models import MigrationPolicy

DOWNTIME_MS = RegexValidator(r"^[1-9][0-9]{0,5}\Z", "A downtime is a whole number of milliseconds, such as 400.")


class ConvergenceActionSerializer(serializers.Serializer):
    name = StrictChoiceField(choices=ACTIONS)
    params = serializers.ListField(
        child=StrictCharField(validators=[DOWNTIME_MS]),
        max_length=1,
        required=False,
        help_text="setDowntime takes one parameter, the downtime in ms; postcopy and abort take none.",
    )


class StallingStepSerializer(serializers.Serializer):
    limit = StrictIntegerField(min_value=1, max_value=1_000_000, help_text="Memory iterations; increasing.")
    action = ConvergenceActionSerializer()


class ConvergenceSerializer(serializers.Serializer):
    """A policy's downtime schedule: the initial downtime, steps when stalling, then the last actions."""

    initial = StrictIntegerField(min_value=1, max_value=MAX_DOWNTIME_MS, allow_null=True, required=False)
    stalling = serializers.ListField(child=StallingStepSerializer(), required=False, max_length=100)
    last = serializers.ListField(child=ConvergenceActionSerializer(), required=False, max_length=100)

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
