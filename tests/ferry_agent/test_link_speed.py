"""The link speed an agent reports is that of the NIC carrying the host's migration address.

NICs of given speeds cannot be made on a test machine, so libvirt's node devices are a fake
connection here (the XML is libvirt's own format), and so are this machine's interfaces, their
addresses and what lies under them (`ip -json address show`, /sys/class/net/<name>/lower_*).
The real path, on the lab, is in tests/virt/test_virt.py (loopback: no speed).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ferry_agent import runner, virt


class Device:
    def __init__(self, name: str, speed: int | None, state: str = "up"):
        link = f"<link speed='{speed}' state='{state}'/>" if speed else f"<link state='{state}'/>"
        capability = f"<capability type='net'><interface>{name}</interface>{link}</capability>"
        self.xml = f"<device><name>net_{name}</name>{capability}</device>"

    def XMLDesc(self, flags: int) -> str:
        return self.xml


class Conn:
    def __init__(self, *devices: Device):
        self.devices = list(devices)

    def listAllDevices(self, flags: int) -> list[Device]:
        return self.devices


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """This machine's interfaces: {name: [addresses]} and {name: [names under it]}."""
    addresses: dict[str, list[str]] = {}
    lower: dict[str, list[str]] = {}

    def with_address(ip):
        return [name for name, ips in addresses.items() if any(ipaddress.ip_address(a) == ip for a in ips)]

    def under(name):
        return [Path(f"/sys/class/net/{name}/lower_{below}") for below in lower.get(name, [])]

    monkeypatch.setattr(virt, "_libvirt", type("lv", (), {"VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET": 1 << 5}))
    monkeypatch.setattr(virt, "interfaces_with_address", with_address)
    monkeypatch.setattr(virt, "lower_devices", under)
    return addresses, lower


def test_the_speed_is_the_migration_nics_not_the_fastest_up_nic(machine):
    addresses, _ = machine
    addresses.update({"eno1": ["192.0.2.10"], "ens4f0": ["198.51.100.7"]})
    conn = Conn(Device("eno1", 1000), Device("ens4f0", 25000))
    assert virt._link_speed(conn, "192.0.2.10") == 1000
    assert virt._link_speed(conn, "198.51.100.7") == 25000


def test_a_bridge_or_bond_without_a_speed_of_its_own_takes_the_fastest_up_device_under_it(machine):
    addresses, lower = machine
    addresses.update({"ovirtmgmt": ["2001:db8::5"], "eno1": ["192.0.2.10"]})
    lower.update({"ovirtmgmt": ["bond0"], "bond0": ["ens1f0", "ens1f1"]})
    conn = Conn(Device("ovirtmgmt", None), Device("ens1f0", 10000), Device("ens1f1", 10000, state="down"),
                Device("eno1", 100000))  # fmt: skip
    assert virt._link_speed(conn, "[2001:db8::5]") == 10000
    conn.devices.append(Device("bond0", 20000))  # a bond reports its own (aggregate) speed
    assert virt._link_speed(conn, "2001:db8::5") == 20000


@pytest.mark.parametrize(
    "address", [None, "", "hv1.invalid", "127.0.0.2", "::1", "localhost", "203.0.113.9", "a b", "-x", "../etc"]
)
def test_unknown_when_the_address_is_not_an_ip_of_an_interface_of_this_machine(machine, address):
    addresses, _ = machine
    addresses.update({"eno1": ["192.0.2.10"]})
    assert virt._link_speed(Conn(Device("eno1", 1000)), address) is None


def test_a_host_name_is_resolved_to_its_addresses(machine, monkeypatch):
    addresses, _ = machine
    addresses.update({"eno1": ["192.0.2.10"], "ens4f0": ["198.51.100.7"]})
    conn = Conn(Device("eno1", 1000), Device("ens4f0", 25000))
    resolved = {"hv1.example.net": [(2, 1, 6, "", ("192.0.2.10", 0))]}
    monkeypatch.setattr(virt.socket, "getaddrinfo", lambda name, *a, **k: resolved[name])
    assert virt._link_speed(conn, "hv1.example.net") == 1000


def test_unknown_when_the_nic_reports_no_speed_or_is_down(machine):
    addresses, _ = machine
    addresses.update({"eno1": ["192.0.2.10"], "eno2": ["192.0.2.11"], "eno3": ["192.0.2.12"]})
    conn = Conn(Device("eno1", None), Device("eno2", 1000, state="down"), Device("eno9", 40000))
    assert [virt._link_speed(conn, f"192.0.2.1{i}") for i in range(3)] == [None, None, None]


def test_a_name_that_is_not_an_interface_name_is_never_read_as_a_path():
    assert virt.lower_devices("../../etc") == []
    assert virt._speed_under("../x", {"../x": 10}) is None


def test_the_agent_passes_its_hosts_migration_address(monkeypatch):
    seen = {}

    class Client:
        def host_info(self):
            return {"id": "h1", "libvirt_uri": "qemu:///system", "address": "192.0.2.10"}

        def report_capabilities(self, payload):
            return payload

    def capabilities(uri, *, timeout, migration_address):
        seen["address"] = migration_address
        return {"link_speed_mbps": 1000}

    monkeypatch.setattr(virt, "host_capabilities", capabilities)
    agent = runner.Agent(host_id="h1", client=Client())
    assert runner.refresh_capabilities(agent)["capabilities"]["link_speed_mbps"] == 1000
    assert seen["address"] == "192.0.2.10"


def test_this_machines_addresses_are_read_for_real():
    """`ip -json address show` on this machine: loopback's 127.0.0.1 is on an interface."""
    assert virt.interfaces_with_address(ipaddress.ip_address("127.0.0.1")) == ["lo"]
    assert virt.interfaces_with_address(ipaddress.ip_address("203.0.113.254")) == []
