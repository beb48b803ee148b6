"""Migration core 0004 moves DRF's plaintext tokens (authtoken_token) into hashed ApiTokens.

The legacy table is created here as DRF's authtoken made it, holding a real key, and the
migration's own function runs against it, so the test reads what an upgraded database holds.
"""

from __future__ import annotations

import hashlib
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiToken
from tests.api.conftest import user_in_role

pytestmark = pytest.mark.django_db

migration = importlib.import_module("core.migrations.0004_apitoken")
LEGACY_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # 40 hex characters, as DRF made them


def create_legacy_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) NOT NULL PRIMARY KEY, '
            '"created" timestamp with time zone NOT NULL, "user_id" integer NOT NULL UNIQUE)'
            if connection.vendor == "postgresql"
            else 'CREATE TABLE authtoken_token ("key" varchar(40) NOT NULL PRIMARY KEY, '
            '"created" datetime NOT NULL, "user_id" integer NOT NULL UNIQUE)'
        )


def legacy_rows() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM authtoken_token")
        return cursor.fetchall()


def run_migration() -> None:
    # The function reads only the schema editor's connection; SQLite's schema editor cannot open
    # inside the test's transaction, so it gets the connection itself.
    migration.legacy_tokens_to_hashed(apps, SimpleNamespace(connection=connection))


def test_plaintext_tokens_become_hashed_and_keep_working():
    user = user_in_role("read_only")
    created = timezone.now().replace(microsecond=0)
    create_legacy_table()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)", [LEGACY_KEY, created, user.pk]
        )

    run_migration()

    token = ApiToken.objects.get(user=user)
    assert (token.name, token.prefix, token.created) == ("migrated", LEGACY_KEY[:8], created)
    assert token.key_hash == hashlib.sha256(LEGACY_KEY.encode()).hexdigest()
    assert legacy_rows() == []
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {LEGACY_KEY}")
    assert client.get("/api/clusters/").status_code == 200
    assert client.get("/api/tokens/").json()["results"][0]["name"] == "migrated"


def test_a_database_that_never_had_drf_tokens_is_left_alone():
    assert "authtoken_token" not in connection.introspection.table_names()
    run_migration()
    assert not ApiToken.objects.exists()
