"""Figures the API tests measure (fuzzing case counts, queries per list); printed at the end of the run."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

FIGURES: dict[str, object] = {}


def record(name: str, value: object) -> None:
    FIGURES[name] = value
    path = Path(settings.VAR_DIR) / "test-figures" / "api.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[name] = value
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
