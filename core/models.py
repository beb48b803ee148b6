"""What every Ferry app shares: optimistic versioning, the audit trail and users' API tokens."""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from core.times import time_text


class VersionedModel(models.Model):
    """A row whose `version` grows by one on every change, for ETag/If-Match and stale forms."""

    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True


class AuditEntry(models.Model):
    """One change: who, when, what, and the values before and after. Never edited."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text="Username, or the task's name.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(
        max_length=128, blank=True, default="", help_text="The web request that wrote it (its X-Request-ID), if any."
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            # Behind the audit list's filters and sortable columns.
            models.Index(fields=["actor"], name="audit_actor_idx"),
            models.Index(fields=["action"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{time_text(self.at)} {self.actor} {self.action} {self.object_type} {self.object_repr}"


class ApiToken(models.Model):
    """A user's key for the API (`Authorization: Token <key>`). Only the key's SHA-256 is stored:
    the key itself is shown once, when the token is created (core.tokens)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(r"^[^\x00-\x1f\x7f]+\Z", "Control characters are not allowed here.")],
        help_text="What the token is for, e.g. the script that uses it.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="The key's first characters, to tell tokens apart."
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    expires = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never expires.")
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "id"]
        verbose_name = "API token"
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="apitoken_name_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def has_expired(self) -> bool:
        return self.expires is not None and self.expires <= timezone.now()
