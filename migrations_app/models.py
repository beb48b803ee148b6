import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.models import VM, Host
from core.times import time_text


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
CORRELATION_ID_MAX = 50
correlation_id_validator = RegexValidator(
    r"^[A-Za-z0-9._:-]{1,50}$", "A correlation id is 1..50 letters, digits, '.', '_', ':' or '-'."
)
TERMINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Evacuation(models.Model):
    """A host being emptied for maintenance (migrations_app.evacuation): its jobs are the VMs it
    moves. One is active (ended_at null) per host at a time."""

    class Outcome(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done: the host is in maintenance"
        CANCELLED = "cancelled", "Cancelled: the host was activated"

    class Trigger(models.TextChoices):
        MAINTENANCE = "maintenance", "Maintenance asked for"
        ERROR_HANDLING = "error_handling", "The host failed: the cluster's error handling"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="evacuations")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MAINTENANCE)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.ACTIVE)
    vm_count = models.PositiveIntegerField(default=0, help_text="VMs running on the host when it started.")
    memory_mib = models.PositiveBigIntegerField(default=0, help_text="Their memory, MiB.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["host"], condition=Q(ended_at__isnull=True), name="one_active_evacuation_per_host"
            ),
        ]

    def __str__(self) -> str:
        return f"evacuation of {self.host} {time_text(self.started_at)}"


class MigrationJob(models.Model):
    """One live migration of a VM, with the plan frozen when it was asked for."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vm = models.ForeignKey(VM, on_delete=models.CASCADE, related_name="migration_jobs")
    source_host = models.ForeignKey(Host, on_delete=models.SET_NULL, null=True, related_name="outgoing_jobs")
    destination_host = models.ForeignKey(Host, on_delete=models.SET_NULL, null=True, related_name="incoming_jobs")
    correlation_id = models.CharField(
        max_length=CORRELATION_ID_MAX,
        null=True,
        blank=True,
        db_index=True,
        validators=[correlation_id_validator],
        help_text="The caller's id for this request (the oVirt API's correlation_id), to find the job by.",
    )
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    plan = models.JSONField()
    error = models.JSONField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True, help_text="Last job statistics from libvirt.")
    samples = models.JSONField(
        default=list,
        blank=True,
        help_text="The run's statistics over time, bounded (see migrations_app.progress).",
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When the source host's agent last reported on this running job."
    )
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the job's task was handed to the broker (null: not yet sent)."
    )
    reconcile_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the source host's agent was last asked to end this job from libvirt."
    )
    cancel_requested = models.BooleanField(default=False)
    evacuation = models.ForeignKey(
        Evacuation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="The evacuation of its source host that asked for this job (null: asked for by hand).",
    )
    automatic = models.BooleanField(
        default=False,
        help_text="Ferry chose the destination (migrations_app.selectors.destination_search): if the job fails, "
        "it is run once more on the next host Ferry chooses.",
    )
    rerun_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reruns",
        help_text="The failed job this one runs again on another host (null: a first attempt).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "migration job"
        constraints = [
            models.UniqueConstraint(fields=["vm"], condition=Q(state__in=ACTIVE_STATES), name="one_active_job_per_vm"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_range"),
            models.CheckConstraint(condition=Q(state__in=JobState.values), name="job_state_values"),
            models.CheckConstraint(
                condition=Q(state__in=ACTIVE_STATES, finished_at__isnull=True)
                | Q(state__in=TERMINAL_STATES, finished_at__isnull=False),
                name="job_finished_iff_terminal",
            ),
            models.CheckConstraint(
                condition=~Q(state=JobState.SUCCEEDED) | Q(progress=100), name="job_succeeded_at_100"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="job_state_idx"),
            # Behind the list's other sortable columns (?ordering=).
            models.Index(fields=["started_at"], name="job_started_idx"),
            models.Index(fields=["finished_at"], name="job_finished_idx"),
            models.Index(fields=["progress"], name="job_progress_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.vm} migration {str(self.id)[:8]}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class AgentToken(models.Model):
    """The credential of one host's agent: acts only for that host, on the agent API only.

    Only the SHA-256 of the key is stored (the key is 256 random bits, so a hash without salt or
    stretching is enough): a database dump holds no usable token. Issuing a new one replaces it.
    """

    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="agent_token")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "agent token"

    def __str__(self) -> str:
        return f"agent token of {self.host}"
