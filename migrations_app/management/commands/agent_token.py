"""`manage.py agent_token <host name or id>`: a new agent token for that host.

The last line of the output is the key alone (for a script: `| tail -n 1`); it is shown once and
only its hash is stored. The host's previous token stops working at once.
"""

from django.core.management.base import BaseCommand

from core.audit import Actor
from migrations_app.management.commands._hosts import host_named
from migrations_app.services import agent_token_issue


class Command(BaseCommand):
    help = "Issue a new agent token for a host (its previous one stops working); the last line is the key."

    def add_arguments(self, parser):
        parser.add_argument("host", help="the host's id or name")

    def handle(self, *args, host, **options):
        host = host_named(host)
        token, key = agent_token_issue(actor=Actor.task("manage.py agent_token"), host=host)
        self.stdout.write(
            f"Agent token of host {host.name} ({host.pk}), created {token.created:%Y-%m-%d %H:%M:%S %Z}. "
            "Set it as FERRY_AGENT_TOKEN for that host's ferry-agent; it is not shown again."
        )
        self.stdout.write(key)
