import pytest
from django.conf import settings

from clusters.models import ClusterLevel
from core.audit import Actor
from tests.factories import UserFactory
from tests.lab_fixtures import fresh_guest, lab  # noqa: F401  (the real libvirt lab)
from tests.worker_fixtures import host_workers, lab_cluster, lab_uris  # noqa: F401  (real Celery workers)


def pytest_configure(config):
    # The default hasher costs about 0.4 s per user on this machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """API rate limits count in the cache, which outlives a test: each test starts from zero."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def actor(admin_user):
    return Actor.of(admin_user)


@pytest.fixture
def level(db):
    def get(value: str) -> ClusterLevel:
        return ClusterLevel.objects.get(level=value)

    return get
