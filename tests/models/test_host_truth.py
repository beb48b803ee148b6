"""Host truth (issue 11): a host is up only on its agent's whole report; activating until then;
when monitoring marks it non operational it says why, and the next good report clears that."""

import pytest
from django.core.exceptions import ValidationError

from clusters.models import REQUIRED_CAPABILITIES, Host, HostStatus, validate_capabilities
from clusters.services import host_activate, host_mark_unreachable, host_report_capabilities
from config.embedded_agent import local_agent
from core.audit import Actor
from core.models import AuditEntry
from ferry_agent import runner
from migrations_app.services import migration_start
from tests.api.conftest import token_client
from tests.factories import ZEROCOPY_HOST, HostFactory, VMFactory

pytestmark = pytest.mark.django_db

AGENT = Actor.task("ferry.refresh_capabilities")


def report(host, **changes):
    return host_report_capabilities(actor=AGENT, host=host, capabilities=dict(ZEROCOPY_HOST, **changes))


@pytest.mark.parametrize(
    "capabilities",
    [{}, {"libvirt_version": "9.0.0"}, {key: ZEROCOPY_HOST[key] for key in REQUIRED_CAPABILITIES[:-1]},
     dict(ZEROCOPY_HOST, memory_mib=None)],
    ids=["empty", "one key", "one missing", "one null"],
)  # fmt: skip
def test_a_partial_or_empty_report_is_refused_and_never_brings_a_host_up(capabilities):
    host = HostFactory(status=HostStatus.NON_OPERATIONAL, capabilities={})
    with pytest.raises(ValidationError) as refused:
        host_report_capabilities(actor=AGENT, host=host, capabilities=capabilities)
    assert "capabilities" in refused.value.message_dict
    host.refresh_from_db()
    assert (host.status, host.capabilities) == (HostStatus.NON_OPERATIONAL, {})


def test_a_whole_report_brings_a_non_operational_host_up_and_clears_its_reason():
    host = HostFactory(status=HostStatus.UP)
    host = host_mark_unreachable(actor=AGENT, host=host, check="libvirt_connection", message="Connection refused")
    assert host.status == HostStatus.NON_OPERATIONAL
    assert (host.status_reason["check"], host.status_reason["message"]) == ("libvirt_connection", "Connection refused")
    assert host.status_reason["at"]

    host = report(host)

    assert (host.status, host.status_reason) == (HostStatus.UP, {})
    entry = AuditEntry.objects.filter(action="capabilities", object_id=str(host.pk)).get()
    assert entry.before["status"] == "non_operational" and entry.after["status"] == "up"


@pytest.mark.parametrize("status", [HostStatus.MAINTENANCE, HostStatus.PREPARING_FOR_MAINTENANCE])
def test_a_host_in_maintenance_stays_there_on_any_report(status):
    host = HostFactory(status=status)
    assert report(host).status == status
    assert host_mark_unreachable(actor=AGENT, host=host, message="down").status == status


def test_activate_asks_the_agent_and_waits_for_its_report(actor, django_capture_on_commit_callbacks, monkeypatch):
    asked = []
    monkeypatch.setattr("migrations_app.hosts.enqueue_refresh_capabilities", asked.append)
    host = HostFactory(status=HostStatus.MAINTENANCE)

    with django_capture_on_commit_callbacks(execute=True):
        host = host_activate(actor=actor, host=host)

    assert host.status == HostStatus.ACTIVATING
    assert host.status_reason["check"] == "activation"
    assert [h.pk for h in asked] == [host.pk]
    assert report(host).status == HostStatus.UP


def test_an_activation_whose_agent_fails_ends_non_operational_with_the_reason(actor, settings, monkeypatch):
    monkeypatch.setattr("migrations_app.hosts.enqueue_refresh_capabilities", lambda host: None)
    settings.FERRY_LIBVIRT_ALLOW_TCP = True
    # Nothing listens on port 1: libvirt's connection is refused at once.
    host = HostFactory(status=HostStatus.MAINTENANCE, libvirt_uri="qemu+tcp://127.0.0.1:1/system")
    host_activate(actor=actor, host=host)

    host = refresh(str(host.pk))

    assert host.status == HostStatus.NON_OPERATIONAL
    assert host.status_reason["check"] == "libvirt_connection"
    assert "qemu+tcp://127.0.0.1:1/system" in host.status_reason["message"]


@pytest.mark.parametrize("side", ["source", "destination"])
def test_no_migration_to_or_from_an_activating_host(actor, side):
    source = HostFactory(status=HostStatus.UP)
    destination = HostFactory(cluster=source.cluster, status=HostStatus.UP)
    vm = VMFactory(host=source)
    Host.objects.filter(pk=(source if side == "source" else destination).pk).update(status=HostStatus.ACTIVATING)
    vm.refresh_from_db()
    destination.refresh_from_db()
    with pytest.raises(ValidationError, match=r"(?i)activating"):
        migration_start(actor=actor, vm=vm, destination=destination)


def test_the_status_reason_is_read_only_in_the_api(admin_user):
    api = token_client(admin_user)
    host = HostFactory(status=HostStatus.NON_OPERATIONAL, status_reason={"check": "x", "message": "m", "at": "t"})
    response = api.patch(f"/api/hosts/{host.pk}/", {"status_reason": {}}, format="json")
    assert response.status_code == 200
    assert response.json()["status_reason"] == {"check": "x", "message": "m", "at": "t"}


def test_the_reason_is_on_the_host_page_and_the_dashboard(admin_client):
    host = HostFactory(name="hv-dead", status=HostStatus.UP)
    host_mark_unreachable(actor=AGENT, host=host, check="libvirt_connection", message="No route to host")
    for url in (f"/hosts/{host.pk}/", "/"):
        page = admin_client.get(url).content.decode()
        assert "No route to host" in page and "libvirt_connection" in page, url


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.1", "not an ip"], ["10.0.0.1/24"], [1], ["10.0.0.1"] * 65, "10.0.0.1"],
)
def test_reported_addresses_are_ip_strings(addresses):
    with pytest.raises(ValidationError):
        validate_capabilities(dict(ZEROCOPY_HOST, addresses=addresses))


def test_reported_addresses_are_stored():
    host = report(HostFactory(), addresses=["10.0.0.1", "fd00::1"])
    assert host.reported_addresses == ["10.0.0.1", "fd00::1"]


def test_an_edit_that_brings_a_host_up_is_an_activation(admin_user, django_capture_on_commit_callbacks, monkeypatch):
    asked = []
    monkeypatch.setattr("migrations_app.hosts.enqueue_refresh_capabilities", asked.append)
    host = HostFactory(status=HostStatus.NON_OPERATIONAL)
    api = token_client(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/hosts/{host.pk}/", {"status": "up", "name": "hv-back"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["name"]) == ("activating", "hv-back")
    assert [h.pk for h in asked] == [host.pk]


def test_a_new_host_said_to_be_up_is_activated(admin_user, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("migrations_app.hosts.enqueue_refresh_capabilities", lambda host: None)
    cluster = HostFactory().cluster
    data = {"name": "hv-new", "cluster": str(cluster.pk), "address": "10.9.9.9", "libvirt_uri": "qemu:///system"}
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(admin_user).post("/api/hosts/", data | {"status": "up"}, format="json")
    assert response.status_code == 201, response.content
    assert Host.objects.get(name="hv-new").status == HostStatus.ACTIVATING


def refresh(host_id: str):
    """The capabilities refresh as the worker runs it: the agent's code with Ferry's allow-list."""
    runner.refresh_capabilities(local_agent(host_id))
    return Host.objects.get(pk=host_id)
