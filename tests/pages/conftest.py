import pytest
from django.test import Client

from tests.pages.world import build_world, read_only_user


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def reader(db):
    return read_only_user()


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client
