"""Maintenance that empties a host, on the real lab (issue 15): three guests under Very large VMs
(one migration per host at a time) all end on the other host, as libvirt says, one at a time, and
the host reaches maintenance."""

from __future__ import annotations

import itertools
import time

import pytest
from rest_framework.test import APIClient

from clusters.models import Host
from config.embedded_agent import local_agent
from ferry_agent import runner, virt
from migrations_app.models import MigrationJob
from tests.factories import UserFactory
from tests.worker_fixtures import vm_of

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_maintenance_moves_three_guests_one_at_a_time_and_the_host_reaches_maintenance(lab, lab_cluster, fresh_guest):
    _cluster, hosts = lab_cluster
    source_name = lab.where(lab["guest"]["uuid"]) or "hosta"
    source, destination = hosts[source_name], hosts[lab.other(source_name)]
    guests = [lab["guest"], fresh_guest(host=source_name), fresh_guest(host=source_name)]
    runner.sync_inventory(local_agent(str(source.pk)))  # the new guests, as the host's agent lists them
    assert {vm_of(guest).host_id for guest in guests} == {source.pk}
    api = APIClient()
    api.force_authenticate(UserFactory(username="e2e-admin", is_staff=True, is_superuser=True))
    try:
        response = api.post(f"/api/hosts/{source.pk}/maintenance/")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["host"]["status"] == "preparing_for_maintenance"
        assert body["evacuation"]["vms"] >= 3
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            source.refresh_from_db()
            if source.status == "maintenance":
                break
            time.sleep(0.5)
        assert source.status == "maintenance", source.status_reason
        for guest in guests:
            assert virt.domain_state(lab.uri(destination.name), guest["uuid"]) == "up", guest["name"]
            assert virt.domain_state(lab.uri(source.name), guest["uuid"]) is None, guest["name"]
            assert vm_of(guest).host_id == destination.pk
        jobs = list(MigrationJob.objects.filter(evacuation__host=source).order_by("started_at"))
        assert len(jobs) >= 3 and all(job.state == "succeeded" for job in jobs), [(j.state, j.error) for j in jobs]
        for earlier, later in itertools.pairwise(jobs):
            assert later.started_at >= earlier.finished_at, "Very large VMs runs one migration per host at a time"
        makespan = (jobs[-1].finished_at - jobs[0].started_at).total_seconds()
        print(f"\n[e2e] evacuation of {len(jobs)} VMs: {makespan:.1f} s")
    finally:
        Host.objects.filter(pk=source.pk).update(status="up", status_reason={})
