"""Enumerations shared by clusters, VMs and policies."""

from django.db import models


class TriState(models.TextChoices):
    """A cluster/VM option that can defer to the level above ("inherit") or be set."""

    INHERIT = "inherit", "Inherit"
    TRUE = "true", "On"
    FALSE = "false", "Off"


def level_key(level: str) -> tuple[int, ...]:
    """'4.10' sorts after '4.9'."""
    return tuple(int(part) for part in level.split("."))
