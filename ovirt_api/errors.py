"""A request the oVirt API refuses: answered with oVirt's <fault>, never a 500."""

from __future__ import annotations

OPERATION_FAILED = "Operation Failed"


class Fault(Exception):
    """`detail` says what was wrong in Ferry's words; `status` is the HTTP status (400 by default,
    as the engine answers, 404 for a missing entity, 409 for a conflict)."""

    def __init__(self, detail: str, *, status: int = 400, reason: str = OPERATION_FAILED):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.reason = reason
