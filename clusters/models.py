import ipaddress
import math
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.deconstruct import deconstructible

from core.choices import TriState
from core.models import VersionedModel
from core.names import UniqueNameModel, validate_name
from core.rules import Rule, rule_error
from ferry_common.uris import ALLOWED_TEXT, UnsafeURI, check_host_name, check_libvirt_uri
from policies.models import MINIMAL_DOWNTIME_ID, MigrationPolicy

DEFAULT_LEVEL = "4.7"
PARALLEL_MIN, PARALLEL_MAX = 2, 255


@deconstructible
class LibvirtUriValidator:
    """A connection field (libvirt_uri, peer_uri) on ferry_common.uris's allow-list, with this deployment's
    settings: qemu+tcp:// only where FERRY_LIBVIRT_ALLOW_TCP is on, ?socket= only inside
    FERRY_LIBVIRT_SOCKET_DIRS. The settings are read at each call, so a test or the lab can turn them on."""

    # A rule, not a format: the allow-list depends on this deployment's settings, which no schema
    # states (the API's schema states the shape, LIBVIRT_URI_SHAPE).
    code = Rule.LIBVIRT_URI_NOT_ALLOWED.value

    def __call__(self, value: str) -> None:
        try:
            check_libvirt_uri(value, **libvirt_uri_options())
        except UnsafeURI as error:
            raise ValidationError(str(error), code=self.code) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LibvirtUriValidator)

    def __hash__(self) -> int:
        return hash(type(self))


def libvirt_uri_options() -> dict[str, Any]:
    """This deployment's allow-list options for ferry_common.uris.check_libvirt_uri."""
    return {
        "allow_tcp": bool(getattr(settings, "FERRY_LIBVIRT_ALLOW_TCP", False)),
        "socket_dirs": tuple(getattr(settings, "FERRY_LIBVIRT_SOCKET_DIRS", ()) or ()),
    }


def validate_host_address(value: str) -> None:
    """A host name, an IPv4 address, or an IPv6 address (bare or in brackets): nothing else reaches a URI."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in bare:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            raise ValidationError(f"{value!r} is not a valid IPv6 address.", code="invalid") from None
        return
    try:
        check_host_name(value)
    except UnsafeURI as error:
        raise ValidationError(f"{error} Enter a host name or an IP address.", code="invalid") from None


libvirt_uri_validator = LibvirtUriValidator()
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_HEX = r"[0-9a-fA-F]{1,4}"
_IPV6 = (
    rf"(({_HEX}:){{7}}{_HEX}|({_HEX}:){{1,7}}:|({_HEX}:){{1,6}}:{_HEX}|({_HEX}:){{1,5}}(:{_HEX}){{1,2}}"
    rf"|({_HEX}:){{1,4}}(:{_HEX}){{1,3}}|({_HEX}:){{1,3}}(:{_HEX}){{1,4}}|({_HEX}:){{1,2}}(:{_HEX}){{1,5}}"
    rf"|{_HEX}:(:{_HEX}){{1,6}}|:((:{_HEX}){{1,7}}|:))"
)
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The last label starts with a letter, as a top-level domain does: a name of digits and dots is an
# IPv4 address or nothing (validate_host_address).
_HOST_NAME = rf"({_LABEL}\.)*[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.?"
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# The shape the API's schema states for a connection URI: qemu:///system, optionally with a socket
# path, or qemu+tls:// (qemu+tcp://) to a host and port. The allow-list itself (which depends on this
# deployment's settings: qemu+tcp://, socket directories) is LibvirtUriValidator's.
LIBVIRT_URI_SHAPE = RegexValidator(
    rf"^(qemu:///system(\?socket=/[!-~]*)?|qemu\+(tls|tcp)://({_IPV4}|\[{_IPV6}\]|{_HOST_NAME})(:{_PORT})?/system)$",
    ALLOWED_TEXT,
)
# The shape the API's schema states for an address: a subset of what validate_host_address accepts,
# so that the schema offers nothing the server refuses.
ADDRESS_SHAPE = RegexValidator(
    rf"^({_IPV4}|\[{_IPV6}\]|{_IPV6}|{_HOST_NAME})$",
    "Enter a host name (its last label starting with a letter) or an IP address.",
)


class ParallelPolicy(models.TextChoices):
    DISABLED = "disabled", "Disabled"
    AUTO = "auto", "Auto"
    AUTO_PARALLEL = "auto_parallel", "Auto Parallel"
    CUSTOM = "custom", "Custom"


class Bandwidth(models.TextChoices):
    AUTO = "auto", "Auto"
    HYPERVISOR_DEFAULT = "hypervisor_default", "Hypervisor default"
    CUSTOM = "custom", "Custom"


class ErrorHandling(models.TextChoices):
    MIGRATE = "migrate", "Migrate virtual machines"
    MIGRATE_HIGHLY_AVAILABLE = "migrate_highly_available", "Migrate only highly available VMs"
    DO_NOT_MIGRATE = "do_not_migrate", "Do not migrate virtual machines"


class ClusterLevel(models.Model):
    """A compatibility version and the options the engine allows at it."""

    level = models.CharField(
        primary_key=True, max_length=8, validators=[RegexValidator(r"^\d+\.\d+$", "A level looks like 4.7.")]
    )
    parallel_migrations_supported = models.BooleanField(default=False)

    class Meta:
        ordering = ["level"]
        verbose_name = "cluster level"

    def __str__(self) -> str:
        return self.level


if TYPE_CHECKING:
    # What the mixin is mixed into; at run time it stays a plain class (migrations name it as a base).
    _MixinBase = models.Model
else:
    _MixinBase = object


class _OriginalValuesMixin(_MixinBase):
    """Remembers the stored values of some fields, so that clean() can tell what changed."""

    tracked_fields: tuple[str, ...] = ()
    _original: dict[str, Any]

    @classmethod
    def from_db(cls, db, field_names, values, *args, **kwargs):
        instance = super().from_db(db, field_names, values, *args, **kwargs)
        # Only fields that were loaded: reading a deferred one here would query, and recurse.
        instance._original = {name: getattr(instance, name) for name in cls.tracked_fields if name in field_names}
        return instance

    def changed(self, *names: str) -> bool:
        original = getattr(self, "_original", None)
        if original is None:
            return True
        return any(name not in original or original[name] != getattr(self, name) for name in names)


def _check_parallel_count(policy: str, count: int | None, *, field: str) -> dict[str, ValidationError]:
    if policy == ParallelPolicy.CUSTOM and count is None:
        return {
            field: rule_error(
                Rule.CUSTOM_PARALLEL_REQUIRED, "Enter the number of parallel connections (2..255) for a custom setting."
            )
        }
    if count is not None and not PARALLEL_MIN <= count <= PARALLEL_MAX:
        return {field: ValidationError(f"Parallel connections must be {PARALLEL_MIN}..{PARALLEL_MAX}.", code="invalid")}
    return {}


class Cluster(_OriginalValuesMixin, UniqueNameModel, VersionedModel):
    tracked_fields = ("compatibility_version_id", "migration_policy_id", "parallel_migrations_policy")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    description = models.TextField(blank=True)
    compatibility_version = models.ForeignKey(
        ClusterLevel, on_delete=models.PROTECT, default=DEFAULT_LEVEL, related_name="clusters"
    )
    migration_policy = models.ForeignKey(
        MigrationPolicy, on_delete=models.PROTECT, default=MINIMAL_DOWNTIME_ID, related_name="clusters"
    )
    migration_bandwidth = models.CharField(max_length=20, choices=Bandwidth.choices, default=Bandwidth.AUTO)
    migration_bandwidth_custom_mbps = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10_000_000)],
        help_text="Mbit/s, for a custom bandwidth.",
    )
    migration_auto_converge = models.CharField(max_length=8, choices=TriState.choices, default=TriState.INHERIT)
    migration_compressed = models.CharField(max_length=8, choices=TriState.choices, default=TriState.INHERIT)
    migration_encrypted = models.CharField(max_length=8, choices=TriState.choices, default=TriState.INHERIT)
    parallel_migrations_policy = models.CharField(
        max_length=16, choices=ParallelPolicy.choices, default=ParallelPolicy.DISABLED
    )
    custom_parallel_migrations = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(PARALLEL_MIN), MaxValueValidator(PARALLEL_MAX)],
        help_text="Connections (2..255), for a custom parallel setting.",
    )
    error_handling = models.CharField(max_length=32, choices=ErrorHandling.choices, default=ErrorHandling.MIGRATE)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name_key"], name="cluster_name_key_unique"),
            models.CheckConstraint(
                condition=Q(custom_parallel_migrations__isnull=True)
                | Q(custom_parallel_migrations__gte=PARALLEL_MIN, custom_parallel_migrations__lte=PARALLEL_MAX),
                name="cluster_custom_parallel_range",
            ),
            models.CheckConstraint(
                condition=~Q(parallel_migrations_policy=ParallelPolicy.CUSTOM)
                | Q(custom_parallel_migrations__isnull=False),
                name="cluster_custom_parallel_required",
            ),
            models.CheckConstraint(
                condition=~Q(migration_bandwidth=Bandwidth.CUSTOM)
                | Q(migration_bandwidth_custom_mbps__isnull=False, migration_bandwidth_custom_mbps__gt=0),
                name="cluster_custom_bandwidth_required",
            ),
            models.CheckConstraint(
                condition=Q(parallel_migrations_policy__in=ParallelPolicy.values)
                & Q(migration_bandwidth__in=Bandwidth.values)
                & Q(error_handling__in=ErrorHandling.values)
                & Q(migration_auto_converge__in=TriState.values)
                & Q(migration_compressed__in=TriState.values)
                & Q(migration_encrypted__in=TriState.values),
                name="cluster_enum_values",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors: dict[str, ValidationError] = {}
        if self.migration_bandwidth == Bandwidth.CUSTOM and not self.migration_bandwidth_custom_mbps:
            errors["migration_bandwidth_custom_mbps"] = rule_error(
                Rule.CUSTOM_BANDWIDTH_REQUIRED, "Enter a positive bandwidth in Mbit/s for a custom bandwidth."
            )
        errors |= _check_parallel_count(
            self.parallel_migrations_policy, self.custom_parallel_migrations, field="custom_parallel_migrations"
        )
        level = self._level()
        if level is not None:
            # A level may lose parallel migrations while clusters use them: those clusters keep
            # their settings (their plans say so), but nobody may newly choose them there.
            if (
                self.parallel_migrations_policy != ParallelPolicy.DISABLED
                and not level.parallel_migrations_supported
                and self.changed("parallel_migrations_policy", "compatibility_version_id")
            ):
                errors["parallel_migrations_policy"] = rule_error(
                    Rule.PARALLEL_UNSUPPORTED_LEVEL,
                    f"Compatibility version {level.level} does not support parallel migrations: "
                    "only Disabled is accepted.",
                )
            policy = self._policy()
            if policy is not None and self.changed("migration_policy_id", "compatibility_version_id"):
                refusal = policy.offer_refusal(
                    level=level.level, parallel_supported=level.parallel_migrations_supported
                )
                if refusal:
                    errors["migration_policy"] = rule_error(Rule.POLICY_NOT_OFFERED, refusal)
        if errors:
            raise ValidationError(errors)

    def _level(self) -> ClusterLevel | None:
        try:
            return self.compatibility_version
        except ClusterLevel.DoesNotExist:
            return None

    def _policy(self) -> MigrationPolicy | None:
        try:
            return self.migration_policy
        except MigrationPolicy.DoesNotExist:
            return None


class HostStatus(models.TextChoices):
    UP = "up", "Up"
    ACTIVATING = "activating", "Activating"
    MAINTENANCE = "maintenance", "Maintenance"
    PREPARING_FOR_MAINTENANCE = "preparing_for_maintenance", "Preparing for maintenance"
    NON_OPERATIONAL = "non_operational", "Non operational"
    UNKNOWN = "unknown", "Unknown"


class AdminHostStatus(models.TextChoices):
    """What an admin may set in a host's edit: up (the host is activating until its agent reports)
    or maintenance (its VMs are migrated away first), as the activate and maintenance actions do.
    Monitoring decides the rest."""

    UP = HostStatus.UP.value, HostStatus.UP.label
    MAINTENANCE = HostStatus.MAINTENANCE.value, HostStatus.MAINTENANCE.label


#: A report never moves a host out of these: an admin put it there.
MAINTENANCE_STATUSES = (HostStatus.MAINTENANCE, HostStatus.PREPARING_FOR_MAINTENANCE)

CAPABILITY_TYPES: dict[str, tuple[type, ...]] = {
    "libvirt_version": (str,),
    "qemu_version": (str,),
    "agent_version": (str,),
    "zerocopy_migrations": (bool,),
    "parallel_migrations": (bool,),
    "cpu_count": (int,),
    "memory_mib": (int,),
    "link_speed_mbps": (int,),
    # The host's own cap on one migration (Vdsm's migration_max_bandwidth): what applies when the
    # cluster gives no bandwidth figure.
    "migration_max_bandwidth_mib_s": (int,),
    # The addresses the host's agent found on its own interfaces: where guest memory may be sent.
    "addresses": (list,),
    # Whether the host's QEMU processes are held to their locked-memory limit (false: they hold
    # CAP_IPC_LOCK, so a VM's memtune hard limit does not stop zero-copy); null: not known.
    "memlock_enforced": (bool,),
    # The limits the host's agent holds every migration to, in seconds: the schedule's pulse, the
    # stall watchdog (null: none) and a total limit (null: none, as in Vdsm).
    "migration_pulse_s": (int, float),
    "migration_stall_s": (int, float),
    "migration_timeout_s": (int, float),
}
#: At most 30 days: no limit an agent reports is longer.
LIMIT_S_MAX = 30 * 86400
#: A report without one of these (or with it null) is not a report: it never brings a host up.
REQUIRED_CAPABILITIES = (
    "libvirt_version",
    "qemu_version",
    "zerocopy_migrations",
    "parallel_migrations",
    "memory_mib",
    "cpu_count",
)
MAX_REPORTED_ADDRESSES = 64


def _check_addresses(items: list) -> None:
    if len(items) > MAX_REPORTED_ADDRESSES:
        raise ValidationError(f"addresses holds at most {MAX_REPORTED_ADDRESSES} entries.")
    for item in items:
        try:
            ipaddress.ip_address(item if isinstance(item, str) else "")
        except ValueError:
            raise ValidationError(f"addresses must be IP address strings; {item!r} is not one.") from None


def validate_capabilities(value) -> None:
    """A host's capabilities report: known keys with values of the right type (or null)."""
    if not isinstance(value, dict):
        raise ValidationError("Capabilities are an object.")
    unknown = sorted(set(value) - set(CAPABILITY_TYPES))
    if unknown:
        raise ValidationError(f"Unknown capabilities: {', '.join(unknown)}.")
    for key, item in value.items():
        types = CAPABILITY_TYPES[key]
        if item is None:
            continue
        if not isinstance(item, types) or (bool not in types and isinstance(item, bool)):
            raise ValidationError(f"{key} must be a {types[0].__name__} or null.")
        if isinstance(item, list):
            _check_addresses(item)
        if isinstance(item, int) and not isinstance(item, bool) and item < 0:
            raise ValidationError(f"{key} must not be negative.")
        if float in types and isinstance(item, int | float) and not (math.isfinite(item) and 0 < item <= LIMIT_S_MAX):
            raise ValidationError(f"{key} must be a number of seconds above 0 and at most {LIMIT_S_MAX}, or null.")
        if isinstance(item, str) and (len(item) > 64 or not re.fullmatch(r"[\w.+~-]*", item)):
            raise ValidationError(f"{key} must be a version string such as 9.0.0.")


def validate_capabilities_report(value) -> None:
    """A whole report from a host's agent: well formed, and with every required key present."""
    validate_capabilities(value)
    missing = [key for key in REQUIRED_CAPABILITIES if value.get(key) is None]
    if missing:
        raise ValidationError(
            f"A capabilities report must carry {', '.join(REQUIRED_CAPABILITIES)}; missing: {', '.join(missing)}."
        )


class Host(UniqueNameModel, VersionedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="hosts")
    address = models.CharField(
        max_length=255,
        validators=[validate_host_address],
        help_text="Migration network address of this host. Guest memory is sent here only when this host owns "
        "it: the host of its connection URI, or an address its agent reported.",
    )
    libvirt_uri = models.CharField(
        max_length=500,
        validators=[libvirt_uri_validator],
        help_text="How this host's agent opens libvirt: qemu:///system on the host itself, or "
        "qemu+tls://<host>[:port]/system.",
    )
    peer_uri = models.CharField(
        max_length=500,
        blank=True,
        validators=[libvirt_uri_validator],
        help_text="libvirt URI a source host uses to reach this one as a migration destination. "
        "Blank: libvirt_uri when it names a remote host, else qemu+tls://<address>/system.",
    )
    status = models.CharField(max_length=32, choices=HostStatus.choices, default=HostStatus.UNKNOWN)
    # Why monitoring or an activation left the host not up: {"check", "message", "at"}; {} when up.
    status_reason = models.JSONField(default=dict, blank=True, editable=False)
    capabilities = models.JSONField(default=dict, blank=True, validators=[validate_capabilities])
    capabilities_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        # Operators run hosts (refresh, maintenance, activate) without change_host, which edits
        # the connection fields: only admins hold that.
        permissions = [("operate_host", "Can refresh hosts, put them into maintenance and activate them")]
        # Behind the list's sortable columns (?ordering=).
        indexes = [
            models.Index(fields=["address"], name="host_address_idx"),
            models.Index(fields=["status"], name="host_status_idx"),
            models.Index(fields=["capabilities_updated_at"], name="host_caps_updated_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=HostStatus.values), name="host_status_values"),
            models.UniqueConstraint(fields=["name_key"], name="host_name_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def destination_uri(self) -> str:
        """The libvirt URI a source host opens to reach this one: always on the allow-list's shape."""
        if self.peer_uri:
            return self.peer_uri
        parts = urlsplit(self.libvirt_uri)
        if parts.scheme in ("qemu+tls", "qemu+tcp") and parts.netloc:
            return self.libvirt_uri
        return f"qemu+tls://{uri_host(self.address)}/system"

    @property
    def control_host(self) -> str:
        """The host part of destination_uri, without brackets: the machine libvirt's control channel reaches."""
        return (urlsplit(self.destination_uri).hostname or "").lower()

    @property
    def reported_addresses(self) -> list[str]:
        addresses = (self.capabilities or {}).get("addresses") or []
        return [item for item in addresses if isinstance(item, str)]


def uri_host(address: str) -> str:
    """An address as a URI's host part: an IPv6 address in brackets."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


#: The largest memtune hard limit Ferry stores (1 EiB): an agent reporting more is refused.
MEMTUNE_MAX_MIB = 2**40


class VMPriority(models.IntegerChoices):
    """oVirt's VM priority: which VMs an evacuation moves first."""

    LOW = 1, "Low"
    MEDIUM = 50, "Medium"
    HIGH = 100, "High"


class VMStatus(models.TextChoices):
    UP = "up", "Up"
    PAUSED = "paused", "Paused"
    DOWN = "down", "Down"
    MIGRATING = "migrating", "Migrating"
    UNKNOWN = "unknown", "Unknown"


class VMParallelPolicy(models.TextChoices):
    INHERIT = "inherit", "Inherit from cluster"
    DISABLED = "disabled", "Disabled"
    AUTO = "auto", "Auto"
    AUTO_PARALLEL = "auto_parallel", "Auto Parallel"
    CUSTOM = "custom", "Custom"


class VM(_OriginalValuesMixin, VersionedModel):
    tracked_fields = ("host_id", "migration_policy_id", "parallel_migrations_policy")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not unique (libvirt's are unique per host only); a name a hypervisor reports goes through
    # core.names.reported_name.
    name = models.CharField(max_length=100, validators=[validate_name])
    uuid = models.UUIDField(unique=True, help_text="The libvirt domain UUID.")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="vms")
    memory_mib = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(64 * 1024 * 1024)])
    vcpus = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4096)])
    status = models.CharField(max_length=16, choices=VMStatus.choices, default=VMStatus.UP)
    migration_policy = models.ForeignKey(
        MigrationPolicy,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="vms",
        help_text="Empty: the cluster's policy.",
    )
    parallel_migrations_policy = models.CharField(
        max_length=16, choices=VMParallelPolicy.choices, default=VMParallelPolicy.INHERIT
    )
    custom_parallel_migrations = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(PARALLEL_MIN), MaxValueValidator(PARALLEL_MAX)]
    )
    migration_encrypted = models.CharField(max_length=8, choices=TriState.choices, default=TriState.INHERIT)
    highly_available = models.BooleanField(
        default=False,
        help_text="Moved off a failing host under the error handling migrate_highly_available.",
    )
    priority = models.PositiveSmallIntegerField(
        choices=VMPriority.choices,
        default=VMPriority.LOW,
        help_text="Which VMs an evacuation migrates first: high before medium before low, then the oldest job.",
    )
    # Only the host's agent sets it, from the domain XML's <memtune><hard_limit>: zero-copy must be
    # able to lock the guest's whole RAM, which such a limit may forbid (README, "Zero-copy and the
    # memory hard limit").
    memtune_hard_limit_mib = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        editable=False,
        validators=[MaxValueValidator(MEMTUNE_MAX_MIB)],
        verbose_name="memtune hard limit (MiB)",
        help_text="Read from the domain XML's <memtune><hard_limit> by its host's agent; empty: none.",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "VM"
        verbose_name_plural = "VMs"
        # Lists are ordered by name: without it a page of 100 sorts every VM (bench/: 20,000 VMs).
        indexes = [
            models.Index(fields=["name"], name="vm_name_idx"),
            # Behind the list's other sortable columns (?ordering=), with the id that breaks ties:
            # on the column alone, a page of VMs sorted by status sorts every VM that is up.
            models.Index(fields=["status", "id"], name="vm_status_id_idx"),
            models.Index(fields=["memory_mib", "id"], name="vm_memory_id_idx"),
            models.Index(fields=["vcpus", "id"], name="vm_vcpus_id_idx"),
            models.Index(fields=["migration_policy", "id"], name="vm_policy_id_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(custom_parallel_migrations__isnull=True)
                | Q(custom_parallel_migrations__gte=PARALLEL_MIN, custom_parallel_migrations__lte=PARALLEL_MAX),
                name="vm_custom_parallel_range",
            ),
            models.CheckConstraint(
                condition=~Q(parallel_migrations_policy=VMParallelPolicy.CUSTOM)
                | Q(custom_parallel_migrations__isnull=False),
                name="vm_custom_parallel_required",
            ),
            models.CheckConstraint(
                condition=Q(status__in=VMStatus.values)
                & Q(parallel_migrations_policy__in=VMParallelPolicy.values)
                & Q(migration_encrypted__in=TriState.values)
                & Q(priority__in=VMPriority.values),
                name="vm_enum_values",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def cluster(self) -> Cluster:
        return self.host.cluster

    def clean(self) -> None:
        super().clean()
        errors = _check_parallel_count(
            self.parallel_migrations_policy, self.custom_parallel_migrations, field="custom_parallel_migrations"
        )
        try:
            level = self.host.cluster.compatibility_version
        except (Host.DoesNotExist, Cluster.DoesNotExist, ClusterLevel.DoesNotExist):
            level = None
        if level is not None:
            if (
                self.parallel_migrations_policy not in (VMParallelPolicy.INHERIT, VMParallelPolicy.DISABLED)
                and not level.parallel_migrations_supported
                and self.changed("parallel_migrations_policy", "host_id")
            ):
                errors["parallel_migrations_policy"] = rule_error(
                    Rule.PARALLEL_UNSUPPORTED_LEVEL,
                    f"Compatibility version {level.level} of this VM's cluster does not support "
                    "parallel migrations: use Inherit or Disabled.",
                )
            policy = self.migration_policy if self.migration_policy_id else None
            if policy is not None and self.changed("migration_policy_id", "host_id"):
                refusal = policy.offer_refusal(
                    level=level.level, parallel_supported=level.parallel_migrations_supported
                )
                if refusal:
                    errors["migration_policy"] = rule_error(Rule.POLICY_NOT_OFFERED, refusal)
        if errors:
            raise ValidationError(errors)
