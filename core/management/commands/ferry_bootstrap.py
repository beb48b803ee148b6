"""`ferry bootstrap`: everything a new or upgraded Ferry needs before it serves, idempotent."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.roles import roles_ensure


class Command(BaseCommand):
    help = (
        "Apply the migrations (which load the cluster levels and built-in policies), collect the static "
        "files, create the roles and, if missing, the admin account (FERRY_ADMIN_USER / FERRY_ADMIN_PASSWORD)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-admin",
            action="store_true",
            help="do not create the admin account (a service's start, where a printed password would go to its log)",
        )

    def handle(self, *args, no_admin=False, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready: migrations applied, built-in policies and levels loaded.")
        call_command("collectstatic", interactive=False, verbosity=0)
        roles_ensure()
        if no_admin:
            return
        username = os.environ.get("FERRY_ADMIN_USER", "admin")
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin account: {username} (it exists; its password is unchanged).")
            return
        given = os.environ.get("FERRY_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if given:
            self.stdout.write(f"Admin account created: {username}, password from FERRY_ADMIN_PASSWORD.")
        else:
            # Shown once: only its hash is stored.
            self.stdout.write(self.style.WARNING(f"Admin account created: {username} / {password}"))
