"""Template filters for Ferry's pages: sizes, schedules and option labels in plain words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils.html import format_html

from core.times import time_text

register = template.Library()

TRI_LABELS = {"inherit": "Inherit", "true": "On", "false": "Off"}


@register.filter
def humanbytes(value: Any) -> str:
    """1536 -> '1.5 KiB'. Anything that is not a number shows as a dash."""
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "—"


@register.filter
def mib(value: Any) -> str:
    """A size in MiB, readably: 65536 -> '64.0 GiB'."""
    try:
        return humanbytes(float(value) * 2**20)
    except (TypeError, ValueError):
        return "—"


@register.filter
def duration(seconds: Any) -> str:
    """3725.4 -> '1 h 02 min', 75 -> '1 min 15 s', 4.2 -> '4 s'. Anything that is not a number: a dash."""
    try:
        total = int(float(seconds))
    except (TypeError, ValueError):
        return "—"
    if total < 0:
        return "—"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def when(value: Any, part: str = "DATETIME_FORMAT") -> str:
    """A time as every page (and Django admin) shows it: in Ferry's time zone, to the second, with
    the zone's name, in a <time> element. `part` may be "TIME_FORMAT" for the time of day only.
    An ISO 8601 string (a time stored in JSON) is read first; nothing gives an empty string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return ""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), time_text(value, part))


@register.filter
def iso_time(value: Any) -> str:
    """An ISO 8601 time as stored in JSON (a host's status reason), shown as every time is."""
    if not isinstance(value, str):
        return "—"
    return when(value)


@register.filter
def tri(value: str) -> str:
    return TRI_LABELS.get(value, value)


def _action_text(action: dict[str, Any]) -> str:
    name = action.get("name")
    params = action.get("params") or []
    if name == "setDowntime" and params:
        return f"Downtime {params[0]} ms"
    if name == "postcopy":
        return "Switch to post-copy"
    if name == "abort":
        return "Abort the migration"
    return str(name)


@register.filter
def schedule_rows(convergence: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A policy's convergence schedule as (when, what) rows."""
    convergence = convergence or {}
    rows: list[tuple[str, str]] = []
    if convergence.get("initial"):
        rows.append(("At the start", f"Downtime {convergence['initial']} ms"))
    for step in convergence.get("stalling") or []:
        rows.append((f"After iteration {step['limit']}", _action_text(step["action"])))
    for index, action in enumerate(convergence.get("last") or []):
        rows.append(("Still stalling after that" if index == 0 else "Then", _action_text(action)))
    if not rows:
        rows.append(("Whole migration", "The hypervisor's default downtime; no steps"))
    return rows


@register.filter
def plan_schedule_rows(schedule: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A plan's convergence_schedule (init, then stalling steps, the last ones at limit -1) as rows."""
    schedule = schedule or {}
    rows = [("At the start", _action_text(action)) for action in schedule.get("init") or []]
    last = 0
    for step in schedule.get("stalling") or []:
        if step["limit"] == -1:
            rows.append(("Still stalling after that" if last == 0 else "Then", _action_text(step["action"])))
            last += 1
        else:
            rows.append((f"After iteration {step['limit']}", _action_text(step["action"])))
    if not rows:
        rows.append(("Whole migration", "The hypervisor's default downtime; no steps"))
    return rows


def schedule_summary(convergence: dict[str, Any] | None) -> str:
    """One line: 'Downtime 100 ms at the start; after iteration 1: downtime 150 ms; ...'."""
    return "; ".join(f"{when}: {what}" for when, what in schedule_rows(convergence))


@register.filter
def initial_downtime(convergence: dict[str, Any] | None) -> str:
    initial = (convergence or {}).get("initial")
    return f"{initial} ms" if initial else "Hypervisor default"


@register.filter
def get_item(mapping: dict, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def shows(form, spec: str) -> bool:
    """form|shows:"migration_bandwidth=custom": whether that field currently has one of the values."""
    name, _, values = spec.partition("=")
    return str(form[name].value()) in values.split("|")


@register.simple_tag(takes_context=True)
def sort_header(context, label: str, field: str, css: str = "") -> str:
    """A column header that sorts the list by `field` (?ordering=), and the other way when it
    already does; the current order is announced with aria-sort."""
    request = context["request"]
    current = request.GET.get("ordering", "")
    if current == field:
        state, following = "ascending", f"-{field}"
    elif current == f"-{field}":
        state, following = "descending", field
    else:
        state, following = "none", field
    query = request.GET.copy()
    query.pop("page", None)
    query["ordering"] = following
    mark = {"ascending": "▲", "descending": "▼", "none": ""}[state]
    return format_html(
        '<th class="{}" aria-sort="{}"><a class="sort" href="?{}">{}'
        '<span class="sort-mark" aria-hidden="true">{}</span></a></th>',
        " ".join(filter(None, ["sortable", css])),
        state,
        query.urlencode(),
        label,
        mark,
    )
