"""No stale write by the agent (issue 11): a refresh that spends a long time in libvirt must not
write back what it loaded before. An admin's rename, peer_uri change and maintenance, saved while
the refresh waits, survive it."""

import socket
import threading

import pytest
from django.db import connection

from clusters.models import Host, HostStatus
from clusters.services import host_report_capabilities, host_set_maintenance, host_update
from config.embedded_agent import local_agent
from core.audit import Actor
from ferry_agent import runner
from tests.factories import ZEROCOPY_HOST, HostFactory

ADMIN = Actor.task("test.admin")


class SilentPeer:
    """A TCP listener that accepts and never answers: libvirt's connect blocks until it gives up."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.accepted = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                peer, _ = self.server.accept()
            except OSError:
                return
            self.held.append(peer)
            self.accepted.set()

    def close(self):
        self.server.close()
        for peer in self.held:
            peer.close()


@pytest.fixture
def silent_peer():
    peer = SilentPeer()
    yield peer
    peer.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_admins_edit_during_a_slow_refresh_survives_it(settings, monkeypatch, silent_peer):
    pytest.importorskip("libvirt")
    settings.FERRY_LIBVIRT_ALLOW_TCP = True
    monkeypatch.setattr(runner, "LIBVIRT_TIMEOUT_S", 3.0)
    host = HostFactory(
        name="hv-slow", status=HostStatus.UP, libvirt_uri=f"qemu+tcp://127.0.0.1:{silent_peer.port}/system"
    )
    outcome = {}

    def refresh():
        try:
            outcome["report"] = runner.refresh_capabilities(local_agent(str(host.pk)))
        finally:
            connection.close()

    worker = threading.Thread(target=refresh)
    worker.start()
    assert silent_peer.accepted.wait(10), "the refresh never reached the peer"
    assert worker.is_alive(), "the refresh must still be waiting in libvirt while the admin saves"
    host_update(
        actor=ADMIN,
        host=Host.objects.get(pk=host.pk),
        data={"name": "hv-renamed", "peer_uri": "qemu+tls://hv-renamed.example/system"},
    )
    host_set_maintenance(actor=ADMIN, host=Host.objects.get(pk=host.pk))
    assert worker.is_alive()
    worker.join(30)
    assert not worker.is_alive()

    stored = Host.objects.get(pk=host.pk)
    assert (stored.name, stored.peer_uri) == ("hv-renamed", "qemu+tls://hv-renamed.example/system")
    assert stored.status == HostStatus.MAINTENANCE
    # The refresh's own verdict is kept, for the admin to see, without taking the host out of maintenance.
    assert stored.status_reason["check"] == "libvirt_connection"
    assert "no answer within 3 s" in stored.status_reason["message"]


@pytest.mark.django_db
def test_a_report_made_from_a_stale_copy_keeps_the_admins_fields():
    host = HostFactory(name="hv-a", status=HostStatus.NON_OPERATIONAL)
    stale = Host.objects.get(pk=host.pk)
    host_update(actor=ADMIN, host=Host.objects.get(pk=host.pk), data={"name": "hv-b", "address": "10.7.7.7"})
    host_set_maintenance(actor=ADMIN, host=Host.objects.get(pk=host.pk))

    host_report_capabilities(actor=ADMIN, host=stale, capabilities=dict(ZEROCOPY_HOST, cpu_count=8))

    stored = Host.objects.get(pk=host.pk)
    assert (stored.name, stored.address, stored.status) == ("hv-b", "10.7.7.7", HostStatus.MAINTENANCE)
    assert stored.capabilities["cpu_count"] == 8
