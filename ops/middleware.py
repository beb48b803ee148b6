"""A request id on every web log line, and one line per request.

The id comes from the request's X-Request-ID when it is sane (a proxy or a client that already
tags its requests; see ferry_common.logs.sane_request_id), otherwise a new one; the response
carries it back in X-Request-ID, and the audit entries the request writes store it. Ids bound
while the request runs (a job's, once the request touches a job) end with it: the request runs
in a copy of the thread's context.
"""

from __future__ import annotations

import contextvars
import logging
import time

from django.http import HttpRequest, HttpResponse

from ferry_common import logs

log = logging.getLogger("ferry.request")

#: Views whose `pk` is a migration job's id: their request line carries the job's id.
JOB_VIEWS = frozenset(
    {
        "migrations:job_detail",
        "migrations:job_status",
        "migrations:job_cancel",
        "migrationjob-detail",
        "migrationjob-cancel",
    }
)
HEADER = "HTTP_X_REQUEST_ID"


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return contextvars.copy_context().run(self._handle, request)

    def _handle(self, request: HttpRequest) -> HttpResponse:
        request_id = logs.sane_request_id(request.META.get(HEADER)) or logs.new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        logs.bind(request_id=request_id)
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        log.info(
            "%s %s %s %.0f ms",
            request.method,
            request.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        match = request.resolver_match
        job_id = view_kwargs.get("job_id")
        if job_id is None and match is not None and match.view_name in JOB_VIEWS:
            job_id = view_kwargs.get("pk")
        if job_id is not None:
            logs.bind(job_id=str(job_id))
