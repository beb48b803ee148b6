"""`ferry-agent --host <host id or name>`: the agent of one hypervisor.

Its environment holds only FERRY_URL, FERRY_AGENT_TOKEN and CELERY_BROKER_URL: no database, no
Django secret. At start it asks Ferry who the token is (GET /api/agent/host/) and refuses to
start when the token is not the named host's, when Ferry does not send this host's tasks to its
own queue, or when the host's libvirt URI is not allowed on this machine. Then it serves
`host.<id>` and nothing else. What may reach libvirt is this machine's choice, given on the
command line: --allow-tcp and --socket-dir (the lab needs both; production needs neither).
"""

from __future__ import annotations

import argparse
import os
import sys

from ferry_agent import __version__
from ferry_agent.checks import Refused as UriRefused
from ferry_agent.checks import UriPolicy
from ferry_agent.client import ClientError, HttpClient, Refused, Unavailable
from ferry_common import logs

ENVIRONMENT = ("FERRY_URL", "FERRY_AGENT_TOKEN", "CELERY_BROKER_URL")
EXIT_REFUSED = 2  # a configuration that will not work: systemd should not retry it blindly
EXIT_UNAVAILABLE = 1


class StartRefused(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED):
        super().__init__(message)
        self.code = code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ferry-agent",
        description="Serve one hypervisor's host tasks for Ferry. Environment: " + ", ".join(ENVIRONMENT) + ".",
    )
    p.add_argument("--host", required=True, help="this host's id or name in Ferry (the token must be this host's)")
    p.add_argument(
        "--allow-tcp",
        action="store_true",
        help="allow qemu+tcp:// libvirt URIs (unauthenticated, unencrypted: a lab, never production)",
    )
    p.add_argument(
        "--socket-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="allow qemu:///system?socket= URIs whose socket lies inside DIR (repeatable)",
    )
    p.add_argument("--concurrency", type=int, default=4, help="tasks run at once (default 4)")
    p.add_argument(
        "--migration-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="hard limit of one libvirt migration call (default 0: none, as in Vdsm; a migration ends by "
        "its schedule, by cancel or by the stall watchdog)",
    )
    p.add_argument(
        "--migration-pulse",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often the convergence schedule is considered (Vdsm's migration_monitor_interval; default 10)",
    )
    p.add_argument(
        "--max-bandwidth",
        type=int,
        default=52,
        metavar="MIB_S",
        help="this host's cap on one migration in MiB/s, used when the cluster sets no bandwidth "
        "(Vdsm's migration_max_bandwidth; default 52)",
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="abort a migration whose remaining data reached no new low for this long (default 600; 0: off)",
    )
    p.add_argument("--ca-file", help="CA certificates to verify FERRY_URL's certificate with (default: the system's)")
    p.add_argument(
        "--allow-http",
        action="store_true",
        help="accept a plain http:// FERRY_URL that is not on loopback (the token then travels in clear)",
    )
    p.add_argument("--check", action="store_true", help="check the token, the host and its URI, then exit")
    p.add_argument("--loglevel", help="log level (default: FERRY_LOG_LEVEL, else INFO)")
    p.add_argument("--version", action="version", version=f"ferry-agent {__version__}")
    return p


def _environment() -> dict[str, str]:
    values = {name: os.environ.get(name, "") for name in ENVIRONMENT}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise StartRefused(f"missing in the environment: {', '.join(missing)}")
    return values


def identify(args: argparse.Namespace, client: HttpClient, uris: UriPolicy) -> dict:
    """Who the token is, checked against --host and this machine's allow-list."""
    try:
        info = client.host_info()
    except Refused as error:
        raise StartRefused(f"Ferry does not accept FERRY_AGENT_TOKEN as an agent token ({error.message})") from None
    except Unavailable as error:
        raise StartRefused(error.message, EXIT_UNAVAILABLE) from None
    except ClientError as error:
        raise StartRefused(f"unexpected answer from Ferry: {error.message}", EXIT_UNAVAILABLE) from None
    host_id, name = str(info.get("id")), str(info.get("name"))
    if args.host not in (host_id, name):
        raise StartRefused(f"FERRY_AGENT_TOKEN is the agent token of host {name} ({host_id}), not of {args.host}")
    queue = f"host.{host_id}"
    if info.get("queue") != queue:
        raise StartRefused(
            f"Ferry sends this host's tasks to the queue {info.get('queue')!r}, not {queue!r}: it runs with "
            "FERRY_HOST_QUEUES=false, where its own worker acts for every host"
        )
    try:
        uris.libvirt(info.get("libvirt_uri"))
    except UriRefused as error:
        raise StartRefused(f"this host's {error}; allowed here: {uris.describe()}") from None
    return info


def forbid_django() -> None:
    """The agent runs no Django code, even where Django is installed beside it (a checkout shared
    with Ferry's web side, where kombu would import it for its JSON encoder): from here on,
    importing Django fails, so a Django import on the agent's path is an error, never a silent
    reach for a database."""
    for name in [name for name in sys.modules if name == "django" or name.startswith("django.")]:
        del sys.modules[name]
    sys.modules["django"] = None  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    forbid_django()
    args = parser().parse_args(argv)
    logs.configure(level=args.loglevel, service="agent")
    uris = UriPolicy(allow_tcp=args.allow_tcp, socket_dirs=tuple(os.path.abspath(d) for d in args.socket_dir))
    try:
        env = _environment()
        try:
            client = HttpClient(
                env["FERRY_URL"], env["FERRY_AGENT_TOKEN"], ca_file=args.ca_file, allow_http=args.allow_http
            )
        except ValueError as error:
            raise StartRefused(str(error)) from None
        info = identify(args, client, uris)
    except StartRefused as error:
        print(f"ferry-agent: refusing to start: {error}", file=sys.stderr)
        return error.code
    host_id, queue = str(info["id"]), str(info["queue"])
    print(
        f"ferry-agent {__version__}: host {info['name']} ({host_id}), queue {queue}, Ferry at {client.base}; "
        f"libvirt URIs: {uris.describe()}",
        file=sys.stderr,
        flush=True,
    )
    if args.check:
        return 0

    from ferry_agent.celery_app import agent_app
    from ferry_agent.runner import Agent

    agent = Agent(
        host_id=host_id,
        client=client,
        uris=uris,
        migration_timeout_s=args.migration_timeout or None,
        migration_pulse_s=args.migration_pulse,
        migration_stall_s=args.stall_timeout or None,
        max_bandwidth_mib_s=max(1, args.max_bandwidth),
    )
    app = agent_app(env["CELERY_BROKER_URL"], agent)
    app.worker_main(argv=worker_argv(host_id, concurrency=args.concurrency))
    return 0


def worker_argv(host_id: str, *, concurrency: int = 4) -> list[str]:
    """The agent's worker: its own queue only; no gossip, mingle or heartbeat (with remote control
    and events off in its app, it declares nothing on the broker but host.<id>)."""
    return [
        "worker",
        "--queues",
        f"host.{host_id}",
        "--concurrency",
        str(max(1, concurrency)),
        "--hostname",
        f"ferry-agent.{host_id}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        logs.root_level(),
    ]


if __name__ == "__main__":
    sys.exit(main())
