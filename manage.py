#!/usr/bin/env python
"""Django's command-line utility for Ferry."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


#: `ferry <command>`: Ferry's own names for its management commands.
FERRY_COMMANDS = {"run": "run_ferry", "bootstrap": "ferry_bootstrap"}


def ferry() -> None:
    """The `ferry` console script: `ferry agent ...` is ferry-agent (no Django at all); `ferry run`,
    `ferry bootstrap` and any other management command go to Django."""
    args = sys.argv[1:]
    if args and args[0] == "agent":
        from ferry_agent.cli import main as agent_main

        sys.exit(agent_main(args[1:]))
    if args and args[0] in FERRY_COMMANDS:
        args[0] = FERRY_COMMANDS[args[0]]
    sys.argv = ["ferry", *args]
    main()


if __name__ == "__main__":
    main()
