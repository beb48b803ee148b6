"""Fixtures for the API tests: users in each role, authenticated clients, and a small estate."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.test import APIClient

from clusters.models import HostStatus
from core.audit import Actor
from core.roles import FERRY_APPS, OPERATOR_GROUP, READ_ONLY_GROUP, roles_ensure
from tests.api.figures import FIGURES
from tests.factories import (
    ClusterFactory,
    HostFactory,
    JobFactory,
    PolicyFactory,
    UserFactory,
    VMFactory,
    api_key,
)

ROLES = ("anonymous", "no_perms", "read_only", "operator", "editor")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("Ferry API figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"FIGURE {name} {value}")


def user_in_role(role: str):
    """A user in one of the ROLES (None for anonymous). Editors hold every Ferry model permission
    without being superusers, so the API is seen to check permissions, not is_superuser."""
    if role == "anonymous":
        return None
    user = UserFactory(username=f"{role}-user")
    if role == "read_only":
        roles_ensure()
        user.groups.add(Group.objects.get(name=READ_ONLY_GROUP))
    elif role == "operator":
        roles_ensure()
        user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    elif role == "editor":
        user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=FERRY_APPS))
    return user


def token_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        # A token in use, as a script's is: its last use is recent, so a test's first request does
        # not also record it (query counts stay those of the request itself).
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key(user, last_used=timezone.now())}")
    return client


@pytest.fixture
def api(admin_user) -> APIClient:
    """An admin's client, authenticated with a token as a script would be."""
    return token_client(admin_user)


@pytest.fixture
def client_for(db):
    return lambda role: token_client(user_in_role(role))


@dataclass
class Estate:
    """A cluster with two hosts up (and a spare one in maintenance), a VM on the first, a custom policy,
    a queued job and an audit entry."""

    cluster: object
    source: object
    destination: object
    vm: object
    policy: object
    job: object
    spare_cluster: object
    spare_host: object
    spare_vm: object


@pytest.fixture
def estate(db, admin_user) -> Estate:
    from clusters.services import cluster_update

    cluster = ClusterFactory(name="prod")
    source = HostFactory(cluster=cluster, name="hv-a", status=HostStatus.UP)
    destination = HostFactory(cluster=cluster, name="hv-b", status=HostStatus.UP)
    vm = VMFactory(host=source, name="db-1")
    policy = PolicyFactory(name="Custom slow")
    job = JobFactory(vm=VMFactory(host=source, name="web-1"), destination_host=destination)
    spare_cluster = ClusterFactory(name="empty")
    spare_host = HostFactory(cluster=cluster, name="hv-spare", status=HostStatus.MAINTENANCE)
    spare_vm = VMFactory(host=destination, name="scratch")
    cluster_update(actor=Actor.of(admin_user), cluster=cluster, data={"description": "Production"})
    cluster.refresh_from_db()
    return Estate(cluster, source, destination, vm, policy, job, spare_cluster, spare_host, spare_vm)
