import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.choices import TriState, level_key
from core.models import VersionedModel
from policies.convergence import normalize_convergence

LEGACY_ID = uuid.UUID("00000000-0000-0000-0000-000000000000")
MINIMAL_DOWNTIME_ID = uuid.UUID("80554327-0569-496b-bdeb-fcbbf52b827b")
SUSPEND_WORKLOAD_ID = uuid.UUID("80554327-0569-496b-bdeb-fcbbf52b827c")
POST_COPY_ID = uuid.UUID("a7aeedb2-8d66-4e51-bb22-32595027ce71")
VERY_LARGE_VMS_ID = uuid.UUID("57237b82-b8c2-425f-b425-114b35219626")
# Legacy is offered only below this cluster level, as in oVirt.
LEGACY_BELOW_LEVEL = "4.3"


def default_convergence() -> dict:
    return {"initial": None, "stalling": [], "last": []}


class MigrationPolicy(VersionedModel):
    """How a migration converges: downtime schedule, concurrency, and zero-copy.

    auto_convergence and migration_compression may be "inherit" (Legacy does that): the
    cluster's option, then the global default, decides.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    builtin = models.BooleanField(default=False, editable=False)
    max_migrations = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(255)],
        help_text="Concurrent outgoing/incoming migrations per host (1..255).",
    )
    auto_convergence = models.CharField(max_length=8, choices=TriState.choices, default=TriState.TRUE)
    migration_compression = models.CharField(max_length=8, choices=TriState.choices, default=TriState.FALSE)
    enable_guest_events = models.BooleanField(default=True)
    zerocopy = models.BooleanField(
        default=False, help_text="Zero-copy migration (needs parallel migrations, no encryption)."
    )
    convergence = models.JSONField(default=default_convergence)

    class Meta:
        ordering = ["-builtin", "name"]
        verbose_name = "migration policy"
        verbose_name_plural = "migration policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_migrations__gte=1, max_migrations__lte=255),
                name="policy_max_migrations_range",
            ),
            models.CheckConstraint(
                condition=models.Q(auto_convergence__in=TriState.values)
                & models.Q(migration_compression__in=TriState.values),
                name="policy_tristate_values",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        try:
            self.convergence = normalize_convergence(self.convergence)
        except ValidationError as error:
            raise ValidationError({"convergence": error.error_list}) from None

    def is_offered_at(self, *, level: str, parallel_supported: bool) -> bool:
        return self.offer_refusal(level=level, parallel_supported=parallel_supported) is None

    def offer_refusal(self, *, level: str, parallel_supported: bool) -> str | None:
        """Why this policy cannot be chosen at a cluster level, or None when it can."""
        if self.pk == LEGACY_ID and level_key(level) >= level_key(LEGACY_BELOW_LEVEL):
            return f"{self.name} is offered only below compatibility version {LEGACY_BELOW_LEVEL}."
        if self.zerocopy and not parallel_supported:
            return f"{self.name} needs parallel migrations, which compatibility version {level} does not support."
        return None
