"""The convergence schedule of a migration policy: validation and the plan's form of it.

Stored form (the policy's `convergence` field):
    {"initial": 300 | null,
     "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["400"]}}, ...],
     "last": [{"name": "setDowntime", "params": ["5000"]}, {"name": "abort", "params": []}]}
A stalling step runs when the migration's memory iteration count exceeds its limit, at most one
step per iteration; the "last" actions follow, in order, once the stalling steps are used up.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from core.rules import Rule, rule_error
from ferry_common.vocabulary import CONVERGENCE_ACTIONS

ACTIONS = CONVERGENCE_ACTIONS
MAX_DOWNTIME_MS = 600_000


def _downtime(value: Any, where: str) -> int:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: the downtime must be a whole number of milliseconds.") from None
    if isinstance(value, bool) or not 1 <= ms <= MAX_DOWNTIME_MS or str(value).strip() != str(ms):
        raise ValidationError(f"{where}: the downtime must be 1..{MAX_DOWNTIME_MS} ms.")
    return ms


def _action(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - {"name", "params"} or "name" not in raw:
        raise ValidationError(f'{where}: an action is {{"name": ..., "params": [...]}}.')
    name = raw["name"]
    params = raw.get("params", [])
    if name not in ACTIONS:
        raise ValidationError(f"{where}: unknown action {name!r}; use one of {', '.join(ACTIONS)}.")
    if not isinstance(params, list):
        raise ValidationError(f"{where}: params must be a list.")
    if name == "setDowntime":
        if len(params) != 1:
            raise ValidationError(f"{where}: setDowntime takes one parameter, the downtime in ms.")
        return {"name": name, "params": [str(_downtime(params[0], where))]}
    if params:
        raise ValidationError(f"{where}: {name} takes no parameters.")
    return {"name": name, "params": []}


def normalize_convergence(raw: Any) -> dict[str, Any]:
    """Validate a stored schedule and return it in canonical form (raises ValidationError)."""
    if not isinstance(raw, dict) or set(raw) - {"initial", "stalling", "last"}:
        raise ValidationError('The schedule is {"initial": ms or null, "stalling": [...], "last": [...]}.')
    initial = raw.get("initial")
    initial = None if initial in (None, "") else _downtime(initial, "Initial downtime")
    stalling_raw = raw.get("stalling") or []
    last_raw = raw.get("last") or []
    if not isinstance(stalling_raw, list) or not isinstance(last_raw, list):
        raise ValidationError("Stalling steps and last actions must be lists.")
    stalling: list[dict[str, Any]] = []
    previous = 0
    for index, step in enumerate(stalling_raw, start=1):
        where = f"Stalling step {index}"
        if not isinstance(step, dict) or set(step) != {"limit", "action"}:
            raise ValidationError(f'{where}: a step is {{"limit": n, "action": {{...}}}}.')
        limit = step["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"{where}: the iteration limit must be a positive whole number.")
        if limit <= previous:
            raise rule_error(
                Rule.STALLING_LIMITS_INCREASE, f"{where}: iteration limits must increase ({limit} after {previous})."
            )
        previous = limit
        stalling.append({"limit": limit, "action": _action(step["action"], where)})
    last = [_action(item, f"Last action {index}") for index, item in enumerate(last_raw, start=1)]
    return {"initial": initial, "stalling": stalling, "last": last}


#: The schedule Vdsm builds when a policy sends none (Legacy): its downtime steps from 101 to
#: 500 ms over the first four iterations, 500 ms again at iteration 42, then abort. Without it a
#: Legacy migration that never converges would never end.
HYPERVISOR_SCHEDULE: dict[str, list] = {
    "init": [{"name": "setDowntime", "params": ["101"]}],
    "stalling": [
        {"limit": 1, "action": {"name": "setDowntime", "params": ["104"]}},
        {"limit": 2, "action": {"name": "setDowntime", "params": ["120"]}},
        {"limit": 3, "action": {"name": "setDowntime", "params": ["189"]}},
        {"limit": 4, "action": {"name": "setDowntime", "params": ["500"]}},
        {"limit": 42, "action": {"name": "setDowntime", "params": ["500"]}},
        {"limit": -1, "action": {"name": "abort", "params": []}},
    ],
}


def has_schedule(convergence: dict[str, Any]) -> bool:
    """Whether the policy sets a schedule of its own (Legacy does not)."""
    return bool(convergence.get("initial") or convergence.get("stalling") or convergence.get("last"))


def plan_schedule(convergence: dict[str, Any], *, drop_postcopy: bool) -> dict[str, list]:
    """The plan's form: init actions, then stalling steps with the last actions at limit -1.
    A policy without a schedule gets the hypervisor's own (HYPERVISOR_SCHEDULE), as Vdsm does."""
    if not has_schedule(convergence):
        return {
            "init": [dict(action, params=list(action["params"])) for action in HYPERVISOR_SCHEDULE["init"]],
            "stalling": [
                {"limit": step["limit"], "action": dict(step["action"], params=list(step["action"]["params"]))}
                for step in HYPERVISOR_SCHEDULE["stalling"]
            ],
        }
    init = []
    if convergence.get("initial"):
        init.append({"name": "setDowntime", "params": [str(convergence["initial"])]})
    stalling = [{"limit": step["limit"], "action": dict(step["action"])} for step in convergence.get("stalling", [])]
    stalling += [{"limit": -1, "action": dict(action)} for action in convergence.get("last", [])]
    if drop_postcopy:
        stalling = [step for step in stalling if step["action"]["name"] != "postcopy"]
    return {"init": init, "stalling": stalling}


def has_postcopy(convergence: dict[str, Any]) -> bool:
    actions = [step["action"] for step in convergence.get("stalling", [])] + list(convergence.get("last", []))
    return any(action["name"] == "postcopy" for action in actions)
