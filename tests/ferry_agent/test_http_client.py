"""The agent's HTTP client: timeouts, retries, TLS verification, and a token that stays at Ferry.

The client against the real agent API is tested in tests/ferry_agent/test_agent_api.py and on the
lab. Here a stand-in HTTP server (Python's http.server) plays Ferry for what a real Ferry cannot
be made to do on demand: be away for a moment, redirect elsewhere, or present a certificate that
is not trusted.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry_agent.client import BadRequest, ClientError, HttpClient, Refused, Unavailable

TOKEN = "agent-token-for-tests"


class StandIn:
    """A server answering every request with (status, body, headers); it records what it got."""

    def __init__(self, status=200, body=None, headers=None, port=0):
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                stand_in.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)) if length else None,
                    }
                )
                payload = json.dumps(body if body is not None else {"ok": True}).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_ins():
    servers: list[StandIn] = []

    def make(**kwargs) -> StandIn:
        servers.append(StandIn(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_call_carries_the_token_and_json(stand_ins):
    ferry = stand_ins(body={"claim": "busy"})
    answer = HttpClient(ferry.url, TOKEN).job_claim("6b0f5a4e-0000-4000-8000-000000000001")
    assert answer == {"claim": "busy"}
    assert ferry.requests == [
        {
            "method": "POST",
            "path": "/api/agent/jobs/6b0f5a4e-0000-4000-8000-000000000001/claim/",
            "authorization": f"Token {TOKEN}",
            "body": {},
        }
    ]


def test_a_job_id_cannot_reach_another_endpoint(stand_ins):
    ferry = stand_ins(body={"state": "running"})
    HttpClient(ferry.url, TOKEN).job_get("../../hosts/1")
    assert ferry.requests[0]["path"] == "/api/agent/jobs/..%2F..%2Fhosts%2F1/"


def test_the_end_of_a_job_survives_a_short_outage_of_ferry():
    port = free_port()
    client = HttpClient(f"http://127.0.0.1:{port}", TOKEN)
    answers: list = []
    finishing = threading.Thread(
        target=lambda: answers.append(client.job_finish("j1", {"result": {"ok": True}})), daemon=True
    )
    finishing.start()
    time.sleep(2.0)  # Ferry is away: the connection is refused, again and again
    assert finishing.is_alive() and not answers
    ferry = StandIn(body={"state": "succeeded"}, port=port)
    try:
        finishing.join(30)
        assert answers == [{"state": "succeeded"}]
        assert [r["path"] for r in ferry.requests] == ["/api/agent/jobs/j1/finish/"]
        assert ferry.requests[0]["body"] == {"result": {"ok": True}}
    finally:
        ferry.close()


def test_a_server_error_from_a_proxy_is_retried_for_the_end_of_a_job(stand_ins):
    ferry = stand_ins(status=503, body={"detail": "restarting"})
    client = HttpClient(ferry.url, TOKEN, finish_retry_s=2.0)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="503 restarting"):
        client.job_finish("j1", {"result": {}})
    assert 1.0 <= time.monotonic() - started < 10
    assert len(ferry.requests) >= 2


def test_progress_gives_up_soon_when_ferry_is_away():
    client = HttpClient(f"http://127.0.0.1:{free_port()}", TOKEN, progress_retry_s=1.0)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot be reached"):
        client.job_progress("j1", {"progress": 5, "stats": {}})
    assert time.monotonic() - started < 5


def test_a_claim_whose_answer_is_lost_is_not_sent_again(stand_ins):
    """A claim that reached Ferry may have started the job: it is never repeated blindly."""
    ferry = stand_ins(status=502, body={"detail": "bad gateway"})
    with pytest.raises(Unavailable):
        HttpClient(ferry.url, TOKEN).job_claim("j1")
    assert len(ferry.requests) == 1


@pytest.mark.parametrize(("status", "error"), [(403, Refused), (401, Refused), (400, BadRequest), (404, ClientError)])
def test_refusals_carry_ferrys_detail(stand_ins, status, error):
    ferry = stand_ins(status=status, body={"detail": "No such job of this host."})
    with pytest.raises(error, match="No such job of this host") as info:
        HttpClient(ferry.url, TOKEN).job_get("j1")
    assert info.value.status == status
    assert len(ferry.requests) == 1


def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(stand_ins):
    elsewhere = stand_ins()
    ferry = stand_ins(status=302, headers={"Location": f"{elsewhere.url}/steal/"})
    with pytest.raises(ClientError, match="redirected"):
        HttpClient(ferry.url, TOKEN).host_info()
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://ferry.example.com",  # the token would cross the network in clear
        "ftp://ferry.example.com",
        "https://user:pw@ferry.example.com",
        "https://ferry.example.com/?next=x",
        "ferry.example.com",
    ],
)
def test_an_unsafe_ferry_url_is_refused(url):
    with pytest.raises(ValueError):
        HttpClient(url, TOKEN)


def test_plain_http_is_accepted_on_loopback_or_when_asked_for():
    HttpClient("http://127.0.0.1:8000", TOKEN)
    HttpClient("http://localhost:8000", TOKEN)
    HttpClient("http://ferry.example.com", TOKEN, allow_http=True)


def test_the_token_is_never_in_the_clients_repr():
    assert TOKEN not in repr(HttpClient("https://ferry.example.com", TOKEN))


@pytest.fixture
def tls_stand_in(tmp_path, stand_ins):
    """The stand-in behind TLS with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    ferry = stand_ins(body={"id": "h"})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    ferry.server.socket = context.wrap_socket(ferry.server.socket, server_side=True)
    return f"https://127.0.0.1:{ferry.port}", cert, ferry


def test_tls_certificates_are_verified_by_default(tls_stand_in):
    url, cert, ferry = tls_stand_in
    with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
        HttpClient(url, TOKEN).host_info()
    assert ferry.requests == []  # the token never left the agent
    assert HttpClient(url, TOKEN, ca_file=str(cert)).host_info() == {"id": "h"}
    assert ferry.requests[0]["authorization"] == f"Token {TOKEN}"
