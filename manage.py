#!/usr/bin/env python
"""Django's command-line utility for Ferry."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


def ferry() -> None:
    """The `ferry` command of a checkout (the launcher make setup writes): ferry.cli."""
    from ferry.cli import main as ferry_main

    ferry_main()


if __name__ == "__main__":
    main()
