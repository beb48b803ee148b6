"""`manage.py create_api_token <username>`: a new API token for a user; the key is the last line."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.audit import Actor
from core.tokens import EXPIRES_DAYS_MAX, token_create, token_expiry


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key as the last line. Only the key's hash is "
        "stored: the key is shown this once. Use it as `Authorization: Token <key>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", help="what the token is for (default: cli-<date and time>); unique per user")
        parser.add_argument(
            "--expires-days", type=int, help=f"days until it stops working, 1 to {EXPIRES_DAYS_MAX} (default: never)"
        )

    def handle(self, *args, username, name=None, expires_days=None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive: a token of theirs would be refused.")
        name = name or f"cli-{timezone.now():%Y%m%d-%H%M%S}"
        try:
            new = token_create(
                actor=Actor.task("create_api_token"),
                user=user,
                name=name,
                expires=token_expiry(expires_days=expires_days),
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        expires = f"until {new.token.expires:%Y-%m-%d %H:%M %Z}" if new.token.expires else "with no expiry"
        self.stdout.write(f"API token {name!r} created for {username}, {expires}. Its key (shown only now):")
        self.stdout.write(new.key)
