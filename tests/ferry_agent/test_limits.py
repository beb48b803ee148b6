"""The agent reports the limits it holds every migration to; a total limit is a decision of the plan.

libvirt's own report is faked here (virt.host_capabilities, which the lab tests run for real in
tests/virt and tests/e2e): what is tested is what the agent adds to it and what Ferry does with it.
"""

import pytest

from clusters.services import host_report_capabilities
from config.embedded_agent import LocalClient, uri_policy
from core.audit import Actor
from ferry_agent import runner, virt
from migrations_app.resolver import migration_limits
from migrations_app.selectors import host_values, migration_plan
from tests.factories import HostFactory, VMFactory

pytestmark = pytest.mark.django_db

LIBVIRT = {
    "libvirt_version": "9.0.0",
    "qemu_version": "7.2.0",
    "agent_version": "0.1.0",
    "zerocopy_migrations": True,
    "parallel_migrations": True,
    "cpu_count": 8,
    "memory_mib": 65536,
    "link_speed_mbps": None,
}


def agent(host, **limits) -> runner.Agent:
    return runner.Agent(host_id=str(host.pk), client=LocalClient(str(host.pk)), uris=uri_policy(), **limits)


@pytest.mark.parametrize(
    ("limits", "reported", "decided"),
    [
        (dict(migration_pulse_s=10.0, migration_stall_s=600.0, migration_timeout_s=None), (10.0, 600.0, None), False),
        (dict(migration_pulse_s=0.5, migration_stall_s=None, migration_timeout_s=7200.0), (0.5, None, 7200.0), True),
    ],
)  # fmt: skip
def test_the_agent_reports_its_limits_and_a_total_limit_is_a_decision(monkeypatch, limits, reported, decided):
    source = HostFactory(libvirt_uri="qemu:///system")
    destination = HostFactory(cluster=source.cluster)
    monkeypatch.setattr(virt, "host_capabilities", lambda uri, **kwargs: dict(LIBVIRT))
    runner.refresh_capabilities(agent(source, **limits))
    source.refresh_from_db()
    caps = source.capabilities
    assert (caps["migration_pulse_s"], caps["migration_stall_s"], caps["migration_timeout_s"]) == reported
    assert migration_limits(host_values(source)) == dict(zip(("pulse_s", "stall_s", "total_s"), reported, strict=True))
    plan = migration_plan(vm=VMFactory(host=source), destination=destination).to_dict()
    decisions = {d["code"]: d["message"] for d in plan["decisions"]}
    assert ("migration_time_limit" in decisions) is decided
    if decided:
        assert "aborts a migration that has not ended after 7200 s" in decisions["migration_time_limit"]


def test_limits_not_reported_are_unknown_not_none():
    source = HostFactory()
    host_report_capabilities(actor=Actor.task("test"), host=source, capabilities=dict(LIBVIRT))
    assert migration_limits(host_values(source)) is None
    plan = migration_plan(vm=VMFactory(host=source), destination=HostFactory(cluster=source.cluster)).to_dict()
    assert "migration_time_limit" not in [d["code"] for d in plan["decisions"]]
