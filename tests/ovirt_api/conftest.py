"""Fixtures for the oVirt-compatible API: a small estate, users, and clients that log in through
the SSO endpoint and send the bearer token as ovirtsdk4 does."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.test import Client

from clusters.models import ClusterLevel, HostStatus
from tests.factories import ClusterFactory, HostFactory, UserFactory, VMFactory

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's default
API = "/ovirt-engine/api"
# What the SDK sends on every API request (reference: ovirtsdk4 4.6.3).
SDK_HEADERS = {"Version": "4", "Accept": "application/xml", "Content-Type": "application/xml"}


@dataclass
class OvirtEstate:
    """Cluster "prod" (4.7) with hosts hv-a and hv-b up and VM db-1 on hv-a; cluster "old" at 4.6."""

    prod: object
    old: object
    hv_a: object
    hv_b: object
    vm: object


@pytest.fixture
def ovirt_estate(db) -> OvirtEstate:
    prod = ClusterFactory(name="prod", compatibility_version=ClusterLevel.objects.get(level="4.7"))
    old = ClusterFactory(name="old", compatibility_version=ClusterLevel.objects.get(level="4.6"))
    hv_a = HostFactory(cluster=prod, name="hv-a", status=HostStatus.UP)
    hv_b = HostFactory(cluster=prod, name="hv-b", status=HostStatus.UP)
    HostFactory(cluster=old, name="hv-old", status=HostStatus.UP)
    vm = VMFactory(host=hv_a, name="db-1", memory_mib=2048, vcpus=2)
    return OvirtEstate(prod, old, hv_a, hv_b, vm)


@pytest.fixture
def ovirt_admin(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


def login(client: Client, username: str, password: str = PASSWORD) -> str:
    response = client.post(
        "/ovirt-engine/sso/oauth/token",
        {"grant_type": "password", "scope": "ovirt-app-api", "username": username, "password": password},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


class OvirtClient:
    """Django's test client speaking to /ovirt-engine/api with a bearer token, as the SDK does."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.token = token

    def headers(self, extra: dict | None = None) -> dict:
        headers = dict(SDK_HEADERS)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers | (extra or {})

    def request(self, method: str, path: str, body: str | bytes = b"", *, headers: dict | None = None, **query):
        url = path if path.startswith("/ovirt-engine/") else f"{API}{path}"
        headers = self.headers(headers)
        return self.client.generic(
            method,
            url + ("?" + urlencode(query) if query else ""),
            body,
            content_type=headers.pop("Content-Type"),
            headers=headers,
        )

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: str | bytes = b"<action/>", **kwargs):
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: str | bytes, **kwargs):
        return self.request("PUT", path, body, **kwargs)


@pytest.fixture
def ovirt(ovirt_admin) -> OvirtClient:
    """The admin, logged in through the SSO endpoint."""
    return OvirtClient(login(Client(), "admin@internal"))


@pytest.fixture
def ovirt_as(db):
    """A client for a user with the given username (and a role set up by the caller)."""
    return lambda user: OvirtClient(login(Client(), f"{user.get_username()}@internal"))
