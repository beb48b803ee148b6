import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.roles import roles_ensure


class Command(BaseCommand):
    help = "Create the roles and, if missing, the admin account (FERRY_ADMIN_USER / FERRY_ADMIN_PASSWORD)."

    def handle(self, *args, **options):
        roles_ensure()
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
