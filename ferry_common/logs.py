"""Ferry's logs, the same on the web, the worker and the agent: one line per record, carrying the
request id and the job id the line belongs to, as plain text or as JSON (FERRY_LOG_FORMAT=json).

The ids live in context variables: the web's middleware binds the request id (and a job's id
once the request touches a job), a task binds the id of its job, and every record logged in that
context carries them, whichever logger wrote it. A thread started for a job's work must run in a
copy of its starter's context (`in_context`), as new threads otherwise start with none.

No Django here: the hypervisor's agent uses this module too.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ContextFilter",
    "JsonFormatter",
    "PlainFormatter",
    "bind",
    "bound",
    "configure",
    "current",
    "dict_config",
    "in_context",
    "new_request_id",
    "sane_request_id",
    "unbind",
]

FIELDS = ("request_id", "job_id")
_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"ferry_{name}", default=None) for name in FIELDS
}
#: An incoming X-Request-ID is kept only when it looks like an id: no spaces, quotes or control
#: characters that could forge a log line, and short.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def current() -> dict[str, str | None]:
    return {name: var.get() for name, var in _vars.items()}


def bind(**values: str | None) -> list[tuple[contextvars.ContextVar, contextvars.Token]]:
    """Set ids for the rest of this context; `unbind(tokens)` restores the previous ones."""
    tokens = []
    for name, value in values.items():
        var = _vars[name]
        tokens.append((var, var.set(None if value is None else str(value))))
    return tokens


def unbind(tokens: list[tuple[contextvars.ContextVar, contextvars.Token]]) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


@contextlib.contextmanager
def bound(**values: str | None) -> Iterator[None]:
    tokens = bind(**values)
    try:
        yield
    finally:
        unbind(tokens)


def in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, to run in a thread with the ids of the context that starts it."""
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> Any:
        return context.run(fn, *args, **kwargs)

    return run


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """An incoming request id worth keeping, or None (then a new one is made)."""
    return value if value and _SANE_ID.fullmatch(value) else None


class ContextFilter(logging.Filter):
    """Puts the context's ids on every record (None when unset), and `context`, their plain form."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        # Django logs a request's error response (django.request) after the middleware is done;
        # the record carries the request, which carries its id.
        if values["request_id"] is None:
            values["request_id"] = getattr(getattr(record, "request", None), "request_id", None)
        # Celery logs a task's arrival before the task runs (and binds its job); the record
        # carries the task's name and its arguments, whose last is a job task's job id.
        data = getattr(record, "data", None)
        if values["job_id"] is None and isinstance(data, dict) and data.get("name") in JOB_TASKS:
            ids = _UUID.findall(str(data.get("args", "")))
            values["job_id"] = ids[-1] if ids else None
        for name, value in values.items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        parts = [f"{name.removesuffix('_id')}={getattr(record, name)}" for name in FIELDS if getattr(record, name)]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "context"):
            ContextFilter().filter(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context's ids,
    the process, and the exception's traceback when there is one."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service or os.environ.get("FERRY_LOG_SERVICE") or None

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "context"):
            ContextFilter().filter(record)
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                line[name] = value
        if self.service:
            line["service"] = self.service
        line["pid"] = record.process
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


def log_format(value: str | None = None) -> str:
    """ "json" or "plain" (the default), from FERRY_LOG_FORMAT unless given."""
    value = (value if value is not None else os.environ.get("FERRY_LOG_FORMAT", "")).strip().lower()
    return "json" if value == "json" else "plain"


def dict_config(*, fmt: str | None = None, level: str | None = None, service: str | None = None) -> dict[str, Any]:
    """A logging.config.dictConfig() dictionary: every record to stderr, with the context's ids."""
    formatter: dict[str, Any] = (
        {"()": "ferry_common.logs.JsonFormatter", "service": service}
        if log_format(fmt) == "json"
        else {"()": "ferry_common.logs.PlainFormatter"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "ferry_common.logs.ContextFilter"}},
        "formatters": {"ferry": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "ferry",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": (level or os.environ.get("FERRY_LOG_LEVEL") or "INFO").upper()},
    }


def root_level() -> str:
    return logging.getLevelName(logging.getLogger().level)


def configure(*, fmt: str | None = None, level: str | None = None, service: str | None = None) -> None:
    import logging.config

    logging.config.dictConfig(dict_config(fmt=fmt, level=level, service=service))
    logging.captureWarnings(True)


def connect_celery(*, fmt: str | None = None, level: str | None = None, service: str | None = None) -> None:
    """Celery's processes log like the rest of Ferry: Celery leaves logging to `configure`, a task
    message carries the ids of the context that sent it (as headers), and a task runs with them,
    plus its job's id when it is a job's task (its last argument: [host_id, job_id])."""
    from celery import signals

    def setup_logging(loglevel: int | str | None = None, **kwargs: Any) -> None:
        if isinstance(loglevel, int):
            loglevel = logging.getLevelName(loglevel)
        configure(fmt=fmt, level=level or loglevel, service=service)

    def add_headers(headers: dict | None = None, **kwargs: Any) -> None:
        if headers is not None:
            for name, value in current().items():
                if value:
                    headers.setdefault(f"ferry_{name}", value)

    def bind_task(task_id: str | None = None, task: Any = None, args: Any = None, **kwargs: Any) -> None:
        request = getattr(task, "request", None)
        values = {name: getattr(request, f"ferry_{name}", None) for name in FIELDS}
        if getattr(task, "name", None) in JOB_TASKS and args:
            values["job_id"] = str(args[-1])
        _task_tokens[str(task_id)] = bind(**values)

    def unbind_task(task_id: str | None = None, **kwargs: Any) -> None:
        tokens = _task_tokens.pop(str(task_id), None)
        if tokens:
            unbind(tokens)

    signals.setup_logging.connect(setup_logging, weak=False, dispatch_uid="ferry.logs.setup_logging")
    signals.before_task_publish.connect(add_headers, weak=False, dispatch_uid="ferry.logs.add_headers")
    signals.task_prerun.connect(bind_task, weak=False, dispatch_uid="ferry.logs.bind_task")
    signals.task_postrun.connect(unbind_task, weak=False, dispatch_uid="ferry.logs.unbind_task")


#: The tasks of one job: their last argument is the job's id (docs/agent-api.md).
JOB_TASKS = frozenset({"ferry.migrate", "ferry.reconcile_job"})
_task_tokens: dict[str, list[tuple[contextvars.ContextVar, contextvars.Token]]] = {}
