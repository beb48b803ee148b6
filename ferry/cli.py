"""The `ferry` console script: one command for every Ferry process.

    ferry run          the web server and a worker on this machine (what `make run` starts)
    ferry agent ...    a hypervisor's agent (the same as `ferry-agent`; no Django at all)
    ferry bootstrap    migrations, roles and the admin account
    ferry check        settings, database, broker and each host's agent, as a readable report
    ferry <command>    any other management command (`ferry agent_token hv01`, `ferry shell`)

Nothing here imports Django before it knows the command needs it: a hypervisor installs only
the agent (`pip install .[agent]`), where `ferry agent` must work and the rest says what is missing.
"""

from __future__ import annotations

import os
import sys

#: Ferry's own names for its management commands.
COMMANDS = {"run": "run_ferry", "bootstrap": "ferry_bootstrap", "check": "ferry_check"}
USAGE = __doc__.split("\n\n")[1]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "agent":
        from ferry_agent.cli import main as agent_main

        sys.exit(agent_main(args[1:]))
    if not args or args[0] in ("-h", "--help", "help"):
        print(f"usage: ferry <command> [options]\n\n{USAGE}")
        return
    try:
        from django.core.management import execute_from_command_line
    except ImportError:
        print(
            f"ferry {args[0]}: this installation has only Ferry's agent (`ferry agent`); the server's "
            "commands need the server extra: pip install 'ferry[server]', or run them from a checkout",
            file=sys.stderr,
        )
        sys.exit(2)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if args[0] in COMMANDS:
        args[0] = COMMANDS[args[0]]
    execute_from_command_line(["ferry", *args])
