"""One way to write a time for people: in Ferry's time zone, to the second, with the zone's name.

The format is config/formats/ (DATETIME_FORMAT), which Django admin reads too.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone


def time_text(value: datetime, part: str = "DATETIME_FORMAT") -> str:
    """`value` as pages, admin and object names show it; `part` "TIME_FORMAT" for the time of day."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, part)
