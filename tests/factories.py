"""Factories for test data: real rows in the real database, no fixtures files."""

import secrets
import uuid

import factory
from django.contrib.auth import get_user_model

from clusters.models import VM, Cluster, ClusterLevel, Host, HostStatus
from core.models import ApiToken
from core.tokens import PREFIX_LENGTH, key_digest
from policies.models import MigrationPolicy

ZEROCOPY_HOST = {
    "libvirt_version": "9.0.0",
    "qemu_version": "7.2.0",
    "agent_version": "12.8.0",
    "zerocopy_migrations": True,
    "parallel_migrations": True,
    "cpu_count": 32,
    "memory_mib": 262144,
    "link_speed_mbps": 100000,
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        password = kwargs.pop("password", "pw-for-tests")
        return model_class.objects.create_user(*args, password=password, **kwargs)


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MigrationPolicy

    name = factory.Sequence(lambda n: f"Custom policy {n}")
    max_migrations = 2
    convergence = factory.LazyFunction(
        lambda: {
            "initial": 200,
            "stalling": [{"limit": 2, "action": {"name": "setDowntime", "params": ["400"]}}],
            "last": [{"name": "abort", "params": []}],
        }
    )


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"cluster-{n}")
    compatibility_version = factory.LazyFunction(lambda: ClusterLevel.objects.get(level="4.7"))


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host-{n}")
    cluster = factory.SubFactory(ClusterFactory)
    address = factory.Sequence(lambda n: f"10.0.{n // 250}.{n % 250 + 1}")
    libvirt_uri = factory.LazyAttribute(lambda o: f"qemu+tls://{o.name}.example/system")
    status = HostStatus.UP
    # The host's agent reports its own migration address: plans send guest memory there.
    capabilities = factory.LazyAttribute(lambda o: dict(ZEROCOPY_HOST, addresses=[o.address]))


class VMFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VM

    name = factory.Sequence(lambda n: f"vm-{n}")
    uuid = factory.LazyFunction(uuid.uuid4)
    host = factory.SubFactory(HostFactory)
    memory_mib = 4096
    vcpus = 4


class JobFactory(factory.django.DjangoModelFactory):
    """A migration job with a minimal plan; queued unless told otherwise."""

    class Meta:
        model = "migrations_app.MigrationJob"

    vm = factory.SubFactory(VMFactory)
    source_host = factory.LazyAttribute(lambda o: o.vm.host)
    destination_host = factory.LazyAttribute(lambda o: HostFactory(cluster=o.vm.host.cluster))
    state = "queued"
    plan = factory.LazyAttribute(lambda o: _plan(o.vm, o.destination_host))


def _plan(vm, destination) -> dict:
    from migrations_app.selectors import migration_plan

    return migration_plan(vm=vm, destination=destination).to_dict()


def api_key(user, **fields) -> str:
    """A new API token of `user`, stored as Ferry stores it (hashed, unaudited set-up); its key."""
    key = secrets.token_urlsafe(32)
    fields.setdefault("name", f"test token {uuid.uuid4().hex[:8]}")
    ApiToken.objects.create(user=user, key_hash=key_digest(key), prefix=key[:PREFIX_LENGTH], **fields)
    return key
