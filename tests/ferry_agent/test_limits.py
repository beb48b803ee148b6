"""The agent reports the limits it holds every migration to, and each plan states them.

libvirt's own report is faked here (virt.host_capabilities, which the lab tests run for real in
tests/virt and tests/e2e): what is tested is what the agent adds to it and what Ferry does with it.
"""

import pytest

from clusters.services import host_report_capabilities
from config.embedded_agent import LocalClient, uri_policy
from core.audit import Actor
from ferry_agent import runner, virt
from migrations_app.selectors import migration_plan
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
    ("limits", "reported"),
    [
        ({"migration_pulse_s": 10.0, "migration_stall_s": 600.0, "migration_timeout_s": None}, (10.0, 600.0, None)),
        ({"migration_pulse_s": 0.5, "migration_stall_s": None, "migration_timeout_s": 7200.0}, (0.5, None, 7200.0)),
    ],
)
def test_the_agent_reports_its_limits_and_the_plan_states_them(monkeypatch, limits, reported):
    source = HostFactory(libvirt_uri="qemu:///system")
    destination = HostFactory(cluster=source.cluster)
    monkeypatch.setattr(virt, "host_capabilities", lambda uri, **kwargs: dict(LIBVIRT))
    runner.refresh_capabilities(agent(source, **limits))
    source.refresh_from_db()
    caps = source.capabilities
    assert (caps["migration_pulse_s"], caps["migration_stall_s"], caps["migration_timeout_s"]) == reported
    plan = migration_plan(vm=VMFactory(host=source), destination=destination).to_dict()
    assert plan["limits"] == {"pulse_s": reported[0], "stall_s": reported[1], "total_s": reported[2]}


def test_a_plan_from_a_host_that_has_not_reported_its_limits_says_so():
    source = HostFactory()
    host_report_capabilities(actor=Actor.task("test"), host=source, capabilities=dict(LIBVIRT))
    plan = migration_plan(vm=VMFactory(host=source), destination=HostFactory(cluster=source.cluster)).to_dict()
    assert plan["limits"] is None
