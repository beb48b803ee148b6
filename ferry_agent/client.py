"""How the agent reads and writes Ferry's state: the agent API of docs/agent-api.md.

One interface, two ways to reach it. `HttpClient(url, token)` speaks the HTTP API with the host's
agent token; it is what `ferry-agent` on a hypervisor uses. The worker that `make run` starts next
to Ferry (FERRY_HOST_QUEUES=false) reaches the same server-side services in-process instead
(config.embedded_agent.LocalClient): this package imports nothing of Django or Ferry's apps.

Both raise the same errors: Refused (403: not this host's, or the token is not accepted),
BadRequest (400: Ferry refused the payload) and Unavailable (Ferry could not be reached).
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from ferry_agent import __version__

log = logging.getLogger(__name__)

__all__ = ["BadRequest", "Client", "ClientError", "HttpClient", "Refused", "Unavailable"]

#: How long the end of a job is retried while Ferry cannot be reached: a web restart or a short
#: outage must not lose it. After that the reconciler ends the job from libvirt's real state.
FINISH_RETRY_S = 600.0
#: A progress report is retried only briefly: the next one follows within a second anyway.
PROGRESS_RETRY_S = 5.0
#: Any other call is retried only while the connection is refused (the request never arrived).
REFUSED_RETRY_S = 10.0
MAX_BACKOFF_S = 15.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class ClientError(Exception):
    """Ferry's agent API refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class Refused(ClientError):
    """403 (or 401): not this host's job or host, or the token is not an agent token of this host."""


class BadRequest(ClientError):
    """400: Ferry refused the payload (malformed or partial); nothing was changed."""


class Unavailable(ClientError):
    """Ferry could not be reached, or answered with a server error, until the retries ran out."""


class Client(Protocol):
    """The agent API, bound to one host. Payloads and answers are the JSON bodies of the doc."""

    def host_info(self) -> dict: ...
    def report_capabilities(self, payload: dict) -> dict: ...
    def report_inventory(self, payload: dict) -> dict: ...
    def job_claim(self, job_id: str) -> dict: ...
    def job_progress(self, job_id: str, payload: dict) -> dict: ...
    def job_finish(self, job_id: str, payload: dict) -> dict: ...
    def job_get(self, job_id: str) -> dict: ...
    def job_reconcile(self, job_id: str, payload: dict) -> dict: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The token is never sent anywhere but FERRY_URL: a redirect is an error, not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirected to {newurl}: not followed", headers, fp)


class HttpClient:
    """The agent API over HTTP(S), with the host's agent token.

    TLS certificates are verified (against the system's CAs, or `ca_file`). Plain http:// is
    accepted only for a loopback address unless `allow_http` is set: the token would travel in
    clear. Every call has a timeout. Connection errors and 502/503/504 answers are retried with
    backoff: for finish for up to FINISH_RETRY_S, for progress for PROGRESS_RETRY_S; other calls
    are retried only while the connection is refused, since their request never arrived.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        ca_file: str | None = None,
        allow_http: bool = False,
        finish_retry_s: float = FINISH_RETRY_S,
        progress_retry_s: float = PROGRESS_RETRY_S,
        refused_retry_s: float = REFUSED_RETRY_S,
    ):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"FERRY_URL must be an http(s):// URL, not {url!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("FERRY_URL may not carry a user name, a password, a query or a fragment")
        if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
            raise ValueError(
                f"FERRY_URL {url} is plain http: the agent token would cross the network in clear "
                "(use https://, or --allow-http on a network you trust)"
            )
        if not token or any(c.isspace() for c in token):
            raise ValueError("FERRY_AGENT_TOKEN is empty or malformed")
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.finish_retry_s = finish_retry_s
        self.progress_retry_s = progress_retry_s
        self.refused_retry_s = refused_retry_s
        self._token = token
        handlers: list[Any] = [_NoRedirect()]
        if parts.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:  # never the token
        return f"HttpClient({self.base!r})"

    # -- the eight calls of the agent API
    def host_info(self) -> dict:
        return self._call("GET", "host/")

    def report_capabilities(self, payload: dict) -> dict:
        return self._call("POST", "capabilities/", payload)

    def report_inventory(self, payload: dict) -> dict:
        return self._call("POST", "inventory/", payload)

    def job_claim(self, job_id: str) -> dict:
        return self._call("POST", f"jobs/{_segment(job_id)}/claim/", {})

    def job_progress(self, job_id: str, payload: dict) -> dict:
        return self._call("POST", f"jobs/{_segment(job_id)}/progress/", payload, retry_s=self.progress_retry_s)

    def job_finish(self, job_id: str, payload: dict) -> dict:
        return self._call("POST", f"jobs/{_segment(job_id)}/finish/", payload, retry_s=self.finish_retry_s)

    def job_get(self, job_id: str) -> dict:
        return self._call("GET", f"jobs/{_segment(job_id)}/")

    def job_reconcile(self, job_id: str, payload: dict) -> dict:
        return self._call("POST", f"jobs/{_segment(job_id)}/reconcile/", payload, retry_s=self.progress_retry_s)

    # -- transport
    def _call(self, method: str, path: str, payload: dict | None = None, *, retry_s: float | None = None) -> dict:
        """One request; retried as the class says. retry_s=None: only while the connection is refused."""
        url = f"{self.base}/api/agent/{path}"
        deadline = time.monotonic() + (retry_s if retry_s is not None else self.refused_retry_s)
        delay = 0.5
        while True:
            try:
                return self._once(method, url, payload)
            except Unavailable as error:
                retryable = retry_s is not None or isinstance(error.__cause__, ConnectionRefusedError)
                if not retryable or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s %s: %s; retrying in %.1f s", method, url, error.message, delay)
                time.sleep(delay)
                delay = min(MAX_BACKOFF_S, delay * 2)

    def _once(self, method: str, url: str, payload: dict | None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (the scheme is checked above)
        request.add_header("Authorization", f"Token {self._token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"ferry-agent/{__version__}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise _http_error(method, url, error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raised = Unavailable(f"Ferry at {self.base} cannot be reached: {reason}")
            raise raised from (reason if isinstance(reason, BaseException) else error)
        if len(body) > MAX_RESPONSE_BYTES:
            raise Unavailable(f"{method} {url}: the answer is too large")
        try:
            answer = json.loads(body)
        except ValueError:
            raise Unavailable(f"{method} {url}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise Unavailable(f"{method} {url}: the answer is not a JSON object")
        return answer


def _segment(job_id: str) -> str:
    return quote(str(job_id), safe="")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read(64 * 1024)
        detail = json.loads(body).get("detail")
        if detail:
            return str(detail)
    except Exception:  # not JSON: the status line says enough
        log.debug("unreadable error body", exc_info=True)
    return str(error.reason)


def _http_error(method: str, url: str, error: urllib.error.HTTPError) -> ClientError:
    message = f"{method} {url}: {error.code} {_detail(error)}"
    if error.code in (401, 403):
        return Refused(message, error.code)
    if error.code == 400:
        return BadRequest(message, error.code)
    if error.code in (502, 503, 504):
        return Unavailable(message, error.code)
    # 404, 405, 500...: a bug or a mismatched Ferry; retrying would not help
    return ClientError(message, error.code)
