from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.models import Host
from core.api.fields import StrictPrimaryKeyRelatedField
from ferry_common.vocabulary import CONVERGENCE_ACTIONS
from migrations_app.models import MigrationJob
from migrations_app.resolver import DecisionCode
from migrations_app.selectors import job_waiting
from migrations_app.services import BULK_MIGRATE_MAX

# One source for the codes: the resolver, which writes them.
DECISION_CODES = tuple(code.value for code in DecisionCode)
LIBVIRT_PARAMS_SCHEMA = {
    "type": "object",
    "description": "libvirt's typed migration parameters, by their libvirt key.",
    "properties": {
        "migrate_uri": {"type": "string"},
        "parallel.connections": {"type": "integer", "minimum": 2, "maximum": 255},
        "bandwidth": {"type": "integer", "minimum": 1, "description": "MiB/s"},
        "tls.destination": {"type": "string"},
    },
    "required": ["migrate_uri"],
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
}


class PlanPolicySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class PlanActionSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=list(CONVERGENCE_ACTIONS))
    params = serializers.ListField(child=serializers.CharField())


class PlanStallingStepSerializer(serializers.Serializer):
    limit = serializers.IntegerField(help_text="Memory iterations; -1 for the policy's last actions.")
    action = PlanActionSerializer()


class PlanScheduleSerializer(serializers.Serializer):
    init = PlanActionSerializer(many=True)
    stalling = PlanStallingStepSerializer(many=True)


@extend_schema_field(LIBVIRT_PARAMS_SCHEMA)
class LibvirtParamsField(serializers.JSONField):
    pass


class PlanLibvirtSerializer(serializers.Serializer):
    destination_uri = serializers.CharField()
    flags = serializers.ListField(child=serializers.CharField(), help_text="libvirt's VIR_MIGRATE_* constant names.")
    params = LibvirtParamsField()


class PlanDecisionSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=DECISION_CODES)
    message = serializers.CharField()


class PlanSerializer(serializers.Serializer):
    """The resolver's plan: exactly what libvirt receives, and every decision made silently."""

    policy = PlanPolicySerializer()
    zerocopy = serializers.BooleanField()
    parallel_connections = serializers.IntegerField(allow_null=True)
    encrypted = serializers.BooleanField()
    compressed = serializers.BooleanField()
    auto_converge = serializers.BooleanField()
    post_copy = serializers.BooleanField()
    max_bandwidth_mib_s = serializers.IntegerField(allow_null=True)
    incoming_limit = serializers.IntegerField()
    outgoing_limit = serializers.IntegerField()
    convergence_schedule = PlanScheduleSerializer()
    libvirt = PlanLibvirtSerializer()
    decisions = PlanDecisionSerializer(many=True)


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


@extend_schema_field(PlanSerializer)
class PlanField(serializers.JSONField):
    """The plan frozen on the job when it was created, as the resolver returned it."""


@extend_schema_field(JobErrorSerializer(allow_null=True))
class JobErrorField(serializers.JSONField):
    pass


class MigrationJobSerializer(serializers.ModelSerializer):
    plan = PlanField(read_only=True)
    error = JobErrorField(read_only=True, allow_null=True)
    stats = serializers.JSONField(read_only=True, help_text="The last job statistics libvirt reported.")
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    waiting = serializers.SerializerMethodField(
        help_text="Only while queued with nobody serving the job's queue: why it does not start, e.g. "
        "'Waiting: no agent serves host.<id> (...)'; otherwise null."
    )

    class Meta:
        model = MigrationJob
        fields = [
            "id",
            "vm",
            "source_host",
            "destination_host",
            "correlation_id",
            "state",
            "progress",
            "plan",
            "error",
            "stats",
            "cancel_requested",
            "automatic",
            "rerun_of",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "waiting",
        ]
        read_only_fields = fields

    def get_waiting(self, job: MigrationJob) -> str | None:
        hosts = self.context.get("waiting_hosts")
        if hosts is None and isinstance(self.context, dict):
            hosts = self.context["waiting_hosts"] = {}
        return job_waiting(job, hosts=hosts)


class MigrationJobDetailSerializer(MigrationJobSerializer):
    """One job, with what a long run's page shows: its samples over time and the agent's last report."""

    samples = serializers.JSONField(
        read_only=True,
        help_text="The run's statistics over time (at most 720, evenly thinned): t (s since start), r (bytes "
        "still to send), p (bytes processed), bps (throughput, bytes/s), i (memory pass), d (dirty bytes/s).",
    )

    class Meta(MigrationJobSerializer.Meta):
        fields = [*MigrationJobSerializer.Meta.fields, "samples", "heartbeat_at"]
        read_only_fields = fields


class DestinationSerializer(serializers.Serializer):
    destination_host = StrictPrimaryKeyRelatedField(
        queryset=Host.objects.select_related("cluster"), help_text="The host to migrate the VM to."
    )


class MigrateSerializer(serializers.Serializer):
    destination_host = StrictPrimaryKeyRelatedField(
        queryset=Host.objects.select_related("cluster"),
        required=False,
        help_text="The host to migrate the VM to. Left out: Ferry chooses the host of the VM's cluster that is "
        "up, has room for it and has the most free memory.",
    )


class BulkMigrateSerializer(serializers.Serializer):
    vms = serializers.ListField(
        child=serializers.UUIDField(),
        min_length=1,
        max_length=BULK_MIGRATE_MAX,
        help_text=f"The VMs to migrate (ids, at most {BULK_MIGRATE_MAX}); each is migrated on its own.",
    )
    destination_host = StrictPrimaryKeyRelatedField(
        queryset=Host.objects.select_related("cluster"),
        required=False,
        help_text="The host to migrate every VM to. Left out: Ferry chooses a host for each VM, as for one VM.",
    )


class BulkMigrateResultSerializer(serializers.Serializer):
    vm = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=[202, 400, 404, 409],
        help_text="What POST /api/vms/{id}/migrate/ would have answered for this VM: 202 queued, 400 refused, "
        "404 no such VM, 409 it already has an active migration.",
    )
    job = MigrationJobSerializer(allow_null=True, help_text="The new queued job (null: none was started).")
    reasons = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        allow_null=True,
        help_text="Why no job was started, by field (null when one was).",
    )


class BulkMigrateResponseSerializer(serializers.Serializer):
    results = BulkMigrateResultSerializer(many=True)
