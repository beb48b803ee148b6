"""`manage.py agent_broker_user <host> [--apply]`: a RabbitMQ user for one host's agent that can
use that host's queue and nothing else.

What the agent's Celery worker (ferry_agent.celery_app: no remote control, no events, no gossip,
no mingle) does on the broker is: declare the queue `host.<id>` and a direct exchange of the same
name, bind them, consume from the queue, acknowledge or requeue its messages, and publish a retry
(a claim refused while a host's limit is reached) to that exchange. In RabbitMQ's terms that is
configure, write and read on the resources named `host.<id>`, so the user gets exactly
`^host\\.<id>$` for all three, on one virtual host: it cannot declare, consume from, bind to or
publish to any other queue or exchange (ACCESS_REFUSED).

Without --apply the commands are printed for a broker administrator to run; with --apply they run
here through rabbitmqctl (which must reach the broker's node). The password is random, printed
once, and stored nowhere by Ferry. Run it again to set a new password.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess

from django.core.management.base import BaseCommand, CommandError

from migrations_app.management.commands._hosts import host_named

VHOST = re.compile(r"[A-Za-z0-9/_.-]{1,100}")


def agent_user(host_id) -> str:
    return f"ferry-agent-{host_id}"


def own_queue_pattern(host_id) -> str:
    return f"^{re.escape(f'host.{host_id}')}$"


class Command(BaseCommand):
    help = "Print (or with --apply run) the rabbitmqctl commands for a broker user limited to a host's queue."

    def add_arguments(self, parser):
        parser.add_argument("host", help="the host's id or name")
        parser.add_argument("--vhost", default="/", help="RabbitMQ virtual host (default /)")
        parser.add_argument("--apply", action="store_true", help="run the commands here with rabbitmqctl")
        parser.add_argument("--rabbitmqctl", default="rabbitmqctl", help="the rabbitmqctl to run (with --apply)")

    def handle(self, *args, host, vhost, apply, rabbitmqctl, **options):
        host = host_named(host)
        if not VHOST.fullmatch(vhost):
            raise CommandError(f"{vhost!r} is not a virtual host name Ferry accepts.")
        # Hex only: a password that began with "-" would be read by rabbitmqctl as an option.
        user, password = agent_user(host.pk), secrets.token_hex(24)
        pattern = own_queue_pattern(host.pk)
        create = ["add_user", user, password]
        permit = ["set_permissions", "-p", vhost, user, pattern, pattern, pattern]
        if not apply:
            self.stdout.write(f"# A RabbitMQ user for the agent of host {host.name}: only the queue host.{host.pk}.")
            self.stdout.write(f"# (If the user exists already: rabbitmqctl change_password {user} <password>.)")
            for command in (create, permit):
                self.stdout.write(shlex.join(["rabbitmqctl", *command]))
        else:
            binary = shutil.which(rabbitmqctl)
            if binary is None:
                raise CommandError(f"{rabbitmqctl} is not installed here; run without --apply and give the commands "
                                   "to the broker's administrator.")  # fmt: skip
            existing = self._run(binary, ["list_users", "--quiet", "--no-table-headers"]).split()
            self._run(binary, ["change_password", user, password] if user in existing else create)
            self._run(binary, permit)
            self.stdout.write(f"RabbitMQ user {user} may use only host.{host.pk} on virtual host {vhost}.")
        self.stdout.write(
            f"The agent's CELERY_BROKER_URL (the password is shown only now): "
            f"amqp://{user}:{password}@<broker host>:5672/{'' if vhost == '/' else vhost}"
        )
        self.stdout.write(password)

    def _run(self, binary: str, args: list[str]) -> str:
        try:
            done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise CommandError(f"rabbitmqctl {args[0]} did not answer within 60 s") from None
        if done.returncode != 0:
            raise CommandError(f"rabbitmqctl {args[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout
