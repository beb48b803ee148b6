"""The custom migration policy form, with its convergence schedule editor.

The editor posts one row per stalling step and per last action (repeated input names, in page
order) and an initial downtime; the form builds the policy's `convergence` from them. A post may
instead carry `convergence` itself, as JSON (the model field's name), when no editor rows are sent.
The model (normalize_convergence, through the service) decides whether the schedule is valid.
"""

from __future__ import annotations

import re
from itertools import zip_longest
from typing import Any

from django import forms

from core import hostile
from core.choices import TriState
from core.forms import VersionedModelForm
from core.templatetags.ferry import schedule_summary
from policies.convergence import ACTIONS
from policies.models import MigrationPolicy

INITIAL = "convergence-initial"
STALLING_LIMIT = "convergence-stalling-limit"
STALLING_ACTION = "convergence-stalling-action"
STALLING_DOWNTIME = "convergence-stalling-downtime"
LAST_ACTION = "convergence-last-action"
LAST_DOWNTIME = "convergence-last-downtime"
EDITOR_INPUTS = (INITIAL, STALLING_LIMIT, STALLING_ACTION, STALLING_DOWNTIME, LAST_ACTION, LAST_DOWNTIME)

ACTION_LABELS = {"setDowntime": "Set downtime", "postcopy": "Switch to post-copy", "abort": "Abort the migration"}
ACTION_CHOICES = [(name, ACTION_LABELS[name]) for name in ACTIONS]


def _number_or_raw(value: str) -> Any:
    value = value.strip()
    return int(value) if re.fullmatch(r"\d{1,9}", value) else value


def _action(name: str, downtime: str) -> dict[str, Any]:
    if name == "setDowntime":
        return {"name": name, "params": [downtime.strip()]}
    return {"name": name, "params": []}


def _row_action(action: dict[str, Any]) -> dict[str, str]:
    params = action.get("params") or []
    return {"action": action.get("name", ""), "downtime": str(params[0]) if params else ""}


class PolicyForm(VersionedModelForm):
    action_choices = ACTION_CHOICES
    convergence = forms.CharField(required=False, widget=forms.HiddenInput, label="Convergence schedule")

    class Meta:
        model = MigrationPolicy
        fields = [
            "name",
            "description",
            "max_migrations",
            "auto_convergence",
            "migration_compression",
            "enable_guest_events",
            "zerocopy",
            "convergence",
        ]
        labels = {
            "max_migrations": "Concurrent migrations per host",
            "auto_convergence": "Auto-converge",
            "migration_compression": "Compression",
            "enable_guest_events": "Tell the guest before and after migrating",
            "zerocopy": "Zero-copy (for very large VMs)",
        }
        help_texts = {
            "zerocopy": "Needs parallel migrations (compatibility version 4.7 or later) and no encryption.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("auto_convergence", "migration_compression"):
            self.typed_field(name, forms.ChoiceField).choices = [
                (TriState.INHERIT, "Inherit from the cluster"),
                (TriState.TRUE, "On"),
                (TriState.FALSE, "Off"),
            ]
        self.fields["max_migrations"].widget.attrs.update(min=1, max=255)

    @property
    def editor_posted(self) -> bool:
        return self.is_bound and any(self.add_prefix(name) in self.data for name in EDITOR_INPUTS)

    def _from_editor(self) -> dict[str, Any]:
        data = self.data
        stalling = []
        rows = zip_longest(
            data.getlist(STALLING_LIMIT), data.getlist(STALLING_ACTION), data.getlist(STALLING_DOWNTIME), fillvalue=""
        )
        for limit, action, downtime in rows:
            if not limit.strip() and not downtime.strip() and action in ("", "setDowntime"):
                continue  # an empty row someone added and left
            stalling.append({"limit": _number_or_raw(limit), "action": _action(action, downtime)})
        last = []
        for action, downtime in zip_longest(data.getlist(LAST_ACTION), data.getlist(LAST_DOWNTIME), fillvalue=""):
            if action in ("", "setDowntime") and not downtime.strip():
                continue
            last.append(_action(action, downtime))
        return {"initial": data.get(INITIAL, "").strip() or None, "stalling": stalling, "last": last}

    def clean_convergence(self):
        if self.editor_posted:
            return self._from_editor()
        raw = self.cleaned_data.get("convergence")
        if isinstance(raw, dict):
            return raw
        if not raw:
            return self.get_initial_for_field(self.fields["convergence"], "convergence") or {
                "initial": None,
                "stalling": [],
                "last": [],
            }
        try:
            return hostile.loads(raw)
        except hostile.JSONTooDeep as error:
            raise forms.ValidationError(str(error)) from None
        except ValueError:
            raise forms.ValidationError(
                'The schedule is JSON: {"initial": ms, "stalling": [...], "last": [...]}.'
            ) from None

    def schedule(self) -> dict[str, Any]:
        """The editor's rows: what was posted, or the stored schedule."""
        if self.editor_posted:
            data = self.data
            return {
                "initial": data.get(INITIAL, ""),
                "stalling": [
                    {"limit": limit, "action": action or "setDowntime", "downtime": downtime}
                    for limit, action, downtime in zip_longest(
                        data.getlist(STALLING_LIMIT),
                        data.getlist(STALLING_ACTION),
                        data.getlist(STALLING_DOWNTIME),
                        fillvalue="",
                    )
                ],
                "last": [
                    {"action": action or "setDowntime", "downtime": downtime}
                    for action, downtime in zip_longest(
                        data.getlist(LAST_ACTION), data.getlist(LAST_DOWNTIME), fillvalue=""
                    )
                ],
            }
        convergence = None
        if self.is_bound and hasattr(self, "cleaned_data"):
            convergence = self.cleaned_data.get("convergence")
        if not isinstance(convergence, dict):
            convergence = self.get_initial_for_field(self.fields["convergence"], "convergence")
        if isinstance(convergence, str):
            try:
                convergence = hostile.loads(convergence)
            except ValueError:
                convergence = None
        if not isinstance(convergence, dict):
            convergence = {}
        return {
            "initial": "" if convergence.get("initial") is None else str(convergence["initial"]),
            "stalling": [
                {"limit": str(step.get("limit", "")), **_row_action(step.get("action") or {})}
                for step in convergence.get("stalling") or []
                if isinstance(step, dict)
            ],
            "last": [_row_action(action) for action in convergence.get("last") or [] if isinstance(action, dict)],
        }

    def display(self, name: str, value: Any) -> str:
        if name == "convergence":
            if isinstance(value, str):
                try:
                    value = hostile.loads(value)
                except ValueError:
                    return value
            return schedule_summary(value) if isinstance(value, dict) else "—"
        return super().display(name, value)
