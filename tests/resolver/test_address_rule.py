"""Guest memory goes only to an address the destination owns (issue 11).

The plan's migrate_uri names the destination's `address` only when that address is the host of the
destination's control connection (destination_uri: peer_uri or libvirt_uri) or one its own agent
reported; otherwise the plan leaves migrate_uri (and tls.destination) out, so the destination's
libvirtd chooses its own address, and says so in a decision.
"""

from dataclasses import replace

import pytest

from clusters.services import host_report_capabilities, host_update
from core.audit import Actor
from migrations_app.resolver import DECISION_REASONS, HostValues, VMValues, resolve_plan
from migrations_app.selectors import migration_plan
from tests.factories import ZEROCOPY_HOST, HostFactory, VMFactory
from tests.resolver.test_rules import VLVM, cluster

SOURCE = HostValues(address="10.0.0.1", destination_uri="qemu+tls://10.0.0.1/system", name="kvm01")
DESTINATION = HostValues(address="10.0.0.2", destination_uri="qemu+tls://kvm02.example/system", name="kvm02")


def plan(destination: HostValues, **cluster_overrides) -> dict:
    return resolve_plan(
        vm=VMValues(vcpus=4, policy=VLVM), cluster=cluster(**cluster_overrides), source=SOURCE, destination=destination
    ).to_dict()


def unverified(result: dict) -> list[dict]:
    return [d for d in result["decisions"] if d["code"] == "migration_address_unverified"]


@pytest.mark.parametrize(
    "destination",
    [
        replace(DESTINATION, destination_uri="qemu+tls://10.0.0.2/system"),
        replace(DESTINATION, destination_uri="qemu+tcp://10.0.0.2:16509/system"),
        replace(DESTINATION, addresses=("192.168.1.2", "10.0.0.2")),
        replace(DESTINATION, address="kvm02.example"),
        replace(DESTINATION, address="KVM02.example."),
        replace(DESTINATION, address="fd00::2", destination_uri="qemu+tls://[fd00:0::2]/system"),
        replace(DESTINATION, address="fd00::2", addresses=("fd00:0:0::2",)),
    ],
    ids=[
        "control host",
        "control host tcp",
        "reported",
        "name",
        "name spelled otherwise",
        "ipv6 control",
        "ipv6 reported",
    ],
)
def test_an_owned_address_carries_the_guests_memory(destination):
    result = plan(destination)
    assert result["libvirt"]["params"]["migrate_uri"].startswith("tcp://")
    assert unverified(result) == []


def test_an_address_the_destination_does_not_own_is_not_used():
    result = plan(replace(DESTINATION, address="10.66.66.66", addresses=("10.0.0.2",)))
    assert "migrate_uri" not in result["libvirt"]["params"]
    assert result["libvirt"]["destination_uri"] == "qemu+tls://kvm02.example/system"
    [decision] = unverified(result)
    assert "kvm02" in decision["message"] and "10.66.66.66" in decision["message"]
    assert "libvirtd chooses its own address" in decision["message"]
    assert "migration_address_unverified" in DECISION_REASONS


def test_an_encrypted_plan_to_an_unowned_address_sends_no_tls_destination():
    result = plan(replace(DESTINATION, address="10.66.66.66"), migration_encrypted="true")
    assert "VIR_MIGRATE_TLS" in result["libvirt"]["flags"]
    assert "migrate_uri" not in result["libvirt"]["params"]
    assert "tls.destination" not in result["libvirt"]["params"]


def test_an_encrypted_plan_to_an_owned_address_names_the_destinations_management_name_for_tls():
    """As Vdsm: the name the host certificate carries, not the migration address."""
    result = plan(replace(DESTINATION, addresses=("10.0.0.2",)), migration_encrypted="true")
    assert result["libvirt"]["params"]["migrate_uri"] == "tcp://10.0.0.2"
    assert result["libvirt"]["params"]["tls.destination"] == "kvm02.example"


@pytest.mark.django_db
def test_an_address_redirect_is_not_followed(actor):
    """The attack of issue 11: hostb's address set to another machine's IP. The next plan to hostb
    keeps libvirt's control channel on the real hostb and sends no memory to the new address."""
    source = HostFactory(name="hosta", address="127.0.0.2", peer_uri="qemu+tls://127.0.0.2/system")
    hostb = HostFactory(
        name="hostb", cluster=source.cluster, address="127.0.0.3", peer_uri="qemu+tls://127.0.0.3/system"
    )
    vm = VMFactory(host=source)
    assert migration_plan(vm=vm, destination=hostb).to_dict()["libvirt"]["params"]["migrate_uri"] == "tcp://127.0.0.3"

    hostb = host_update(actor=actor, host=hostb, data={"address": "127.0.0.99"})
    redirected = migration_plan(vm=vm, destination=hostb).to_dict()

    assert "migrate_uri" not in redirected["libvirt"]["params"]
    assert redirected["libvirt"]["destination_uri"] == "qemu+tls://127.0.0.3/system"
    assert [d["code"] for d in unverified(redirected)] == ["migration_address_unverified"]

    # Once hostb's own agent reports the address as its own, it is used.
    host_report_capabilities(
        actor=Actor.task("ferry.refresh_capabilities"),
        host=hostb,
        capabilities=dict(ZEROCOPY_HOST, addresses=["127.0.0.3", "127.0.0.99"]),
    )
    hostb.refresh_from_db()
    assert migration_plan(vm=vm, destination=hostb).to_dict()["libvirt"]["params"]["migrate_uri"] == "tcp://127.0.0.99"
