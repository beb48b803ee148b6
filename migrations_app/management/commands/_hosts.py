"""The host a command names, by id or by name."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from clusters.models import Host


def host_named(value: str) -> Host:
    try:
        host = Host.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        host = None
    host = host or Host.objects.filter(name=value).first()
    if host is None:
        raise CommandError(f"No host has the id or name {value!r}.")
    return host
