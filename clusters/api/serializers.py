from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.models import (
    ADDRESS_SHAPE,
    LIBVIRT_URI_SHAPE,
    VM,
    AdminHostStatus,
    Bandwidth,
    Cluster,
    ClusterLevel,
    Host,
    HostStatus,
    ParallelPolicy,
)
from core.api.fields import StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField, ecma_regex
from core.api.serializers import FerryModelSerializer
from core.choices import TriState
from policies.models import MigrationPolicy

VERSION_STRING = RegexValidator(r"^[A-Za-z0-9_.+~-]+\Z", "A version string such as 9.0.0.")
ADDRESS = ecma_regex(ADDRESS_SHAPE)
LIBVIRT_URI = ecma_regex(LIBVIRT_URI_SHAPE, ascii_only=True)
# JSON numbers beyond this lose precision in JavaScript clients.
MAX_SAFE_INTEGER = 2**53 - 1


class ClusterLevelSerializer(FerryModelSerializer):
    class Meta:
        model = ClusterLevel
        fields = ["level", "parallel_migrations_supported"]
        read_only_fields = ["level"]


class ClusterSerializer(FerryModelSerializer):
    migration_policy_name = serializers.CharField(source="migration_policy.name", read_only=True)

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "description",
            "compatibility_version",
            "migration_policy",
            "migration_policy_name",
            "migration_bandwidth",
            "migration_bandwidth_custom_mbps",
            "migration_auto_converge",
            "migration_compressed",
            "migration_encrypted",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "error_handling",
            "version",
        ]
        read_only_fields = ["id", "version"]


class ImpactQuerySerializer(serializers.Serializer):
    """Proposed cluster settings, as query parameters; each one left out keeps the cluster's value."""

    compatibility_version = serializers.SlugRelatedField(
        slug_field="level", queryset=ClusterLevel.objects.all(), required=False
    )
    migration_policy = serializers.PrimaryKeyRelatedField(queryset=MigrationPolicy.objects.all(), required=False)
    migration_bandwidth = serializers.ChoiceField(choices=Bandwidth.choices, required=False)
    migration_bandwidth_custom_mbps = serializers.IntegerField(
        min_value=1, max_value=10_000_000, required=False, allow_null=True
    )
    migration_auto_converge = serializers.ChoiceField(choices=TriState.choices, required=False)
    migration_compressed = serializers.ChoiceField(choices=TriState.choices, required=False)
    migration_encrypted = serializers.ChoiceField(choices=TriState.choices, required=False)
    parallel_migrations_policy = serializers.ChoiceField(choices=ParallelPolicy.choices, required=False)
    custom_parallel_migrations = serializers.IntegerField(min_value=2, max_value=255, required=False, allow_null=True)

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: "Unknown parameter." for name in sorted(unknown)})
        # An empty number in a query string means "none".
        data = {
            name: (None if value == "" and name.endswith(("_mbps", "_migrations")) else value)
            for name, value in data.items()
        }
        return super().to_internal_value(data)


class ImpactGroupSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    vms = serializers.ListField(child=serializers.UUIDField())
    zerocopy = serializers.BooleanField()
    parallel = serializers.BooleanField()
    codes = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    # A declared field is not a class attribute (the serializer's metaclass takes it out), which
    # the stubs do not know, so they see Field.label overridden.
    label = serializers.CharField()  # type: ignore[assignment]


class ImpactSerializer(serializers.Serializer):
    total_vms = serializers.IntegerField()
    policy = serializers.DictField(child=serializers.CharField())
    groups = ImpactGroupSerializer(many=True)


class CapabilitiesSerializer(serializers.Serializer):
    """What a host agent reports. Unknown keys are ignored; a missing or null value means unknown."""

    libvirt_version = StrictCharField(
        max_length=64, allow_blank=True, allow_null=True, required=False, validators=[VERSION_STRING]
    )
    qemu_version = StrictCharField(
        max_length=64, allow_blank=True, allow_null=True, required=False, validators=[VERSION_STRING]
    )
    agent_version = StrictCharField(
        max_length=64, allow_blank=True, allow_null=True, required=False, validators=[VERSION_STRING]
    )
    zerocopy_migrations = StrictBooleanField(allow_null=True, required=False)
    parallel_migrations = StrictBooleanField(allow_null=True, required=False)
    cpu_count = StrictIntegerField(min_value=0, max_value=MAX_SAFE_INTEGER, allow_null=True, required=False)
    memory_mib = StrictIntegerField(min_value=0, max_value=MAX_SAFE_INTEGER, allow_null=True, required=False)
    link_speed_mbps = StrictIntegerField(min_value=0, max_value=MAX_SAFE_INTEGER, allow_null=True, required=False)
    migration_max_bandwidth_mib_s = StrictIntegerField(
        min_value=1,
        max_value=MAX_SAFE_INTEGER,
        allow_null=True,
        required=False,
        help_text="The host's own cap on one migration (MiB/s), used when the cluster gives no bandwidth figure.",
    )
    addresses = serializers.ListField(
        child=serializers.IPAddressField(), max_length=64, allow_null=True, required=False
    )


@extend_schema_field(CapabilitiesSerializer)
class CapabilitiesField(serializers.JSONField):
    """The last report of the host's own agent; read-only here (only the agent API stores a report)."""


class StatusReasonSerializer(serializers.Serializer):
    """Why the host is not up: which check, its error, when ({} while nothing is wrong)."""

    check = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    at = serializers.DateTimeField(required=False)


@extend_schema_field(StatusReasonSerializer)
class StatusReasonField(serializers.JSONField):
    """Set by monitoring and activation only."""


class HostStatusField(StrictChoiceField):
    """A host's status: any of HostStatus when read; on a write only what an admin may ask for
    (AdminHostStatus). Monitoring decides the rest, so the schema offers nothing else."""

    def __init__(self, **kwargs):
        super().__init__(choices=AdminHostStatus.choices, **kwargs)


class HostStatusFieldExtension(OpenApiSerializerFieldExtension):
    target_class = HostStatusField

    def map_serializer_field(self, auto_schema, direction):
        choices = HostStatus.choices if direction == "response" else AdminHostStatus.choices
        return build_choice_field(serializers.ChoiceField(choices=choices))


class HostSerializer(FerryModelSerializer):
    capabilities = CapabilitiesField(read_only=True)
    status_reason = StatusReasonField(read_only=True)
    status = HostStatusField(
        required=False,
        help_text="Up or maintenance on a write, as the activate and maintenance actions: up makes it activating "
        "until its agent reports, maintenance migrates its VMs away first. Monitoring sets non_operational "
        "and unknown.",
    )

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "cluster",
            "address",
            "libvirt_uri",
            "peer_uri",
            "status",
            "status_reason",
            "capabilities",
            "capabilities_updated_at",
            "version",
        ]
        read_only_fields = ["id", "status_reason", "capabilities_updated_at", "version"]
        extra_kwargs = {
            "address": {"validators": [ADDRESS], "max_length": 253},
            "libvirt_uri": {"validators": [LIBVIRT_URI]},
            "peer_uri": {"validators": [LIBVIRT_URI]},
        }


class VMSerializer(FerryModelSerializer):
    cluster = serializers.UUIDField(source="host.cluster_id", read_only=True, help_text="The host's cluster.")

    class Meta:
        model = VM
        fields = [
            "id",
            "name",
            "uuid",
            "host",
            "cluster",
            "memory_mib",
            "vcpus",
            "status",
            "migration_policy",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "migration_encrypted",
            "highly_available",
            "priority",
            "memtune_hard_limit_mib",
            "version",
        ]
        read_only_fields = ["id", "memtune_hard_limit_mib", "version"]
