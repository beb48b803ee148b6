from django.conf import settings
from django.db import models
from django.utils import timezone

from core.times import time_text


class SsoToken(models.Model):
    """A bearer token from /ovirt-engine/sso/oauth/token. Only its SHA-256 is stored: the key is
    shown once, in the login answer. It ends at `expires_at`, or at logout (the row is deleted)."""

    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "oVirt API token"

    def __str__(self) -> str:
        return f"token of {self.user} until {time_text(self.expires_at)}"
