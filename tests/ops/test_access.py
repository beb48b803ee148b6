"""Who may read the operations endpoints: /health/ anyone (a load balancer has no login),
/health/detail/ staff only, /metrics the allowed addresses only, whoever is logged in. All are
read-only: any other method is refused."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OUTSIDE = "203.0.113.9"
ROLES = ("anonymous", "user", "staff", "superuser")
# (path, address) -> the status each role gets for GET.
MATRIX = {
    ("/health/", "127.0.0.1"): {"anonymous": 200, "user": 200, "staff": 200, "superuser": 200},
    ("/health/", OUTSIDE): {"anonymous": 200, "user": 200, "staff": 200, "superuser": 200},
    ("/health/detail/", "127.0.0.1"): {"anonymous": 302, "user": 403, "staff": 200, "superuser": 200},
    ("/metrics", "127.0.0.1"): {"anonymous": 200, "user": 200, "staff": 200, "superuser": 200},
    ("/metrics", OUTSIDE): {"anonymous": 403, "user": 403, "staff": 403, "superuser": 403},
}


def client_as(role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(UserFactory(is_staff=role in ("staff", "superuser"), is_superuser=role == "superuser"))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "address"), list(MATRIX))
def test_who_may_read_each_operations_endpoint(role, path, address):
    response = client_as(role).get(path, REMOTE_ADDR=address)

    assert response.status_code == MATRIX[path, address][role]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/health/", "/health/detail/", "/metrics"])
def test_the_operations_endpoints_only_read(method, path):
    response = getattr(client_as("superuser"), method)(path, REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 405
