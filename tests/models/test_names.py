"""Cluster and host names are unique after Unicode normalization and case folding; no name carries
control or invisible formatting characters (core.names)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clusters.models import Cluster
from clusters.services import cluster_create, host_create, vm_create
from core.names import name_key, reported_name
from tests.factories import ClusterFactory, HostFactory

LOOK_ALIKES = [
    "PROD",
    "Prod",
    "\uff50\uff52\uff4f\uff44",
    "prod\u200b",
    "\u202eprod",
    "prod ",
    " prod",
    "prod\x00",
    "\u2119rod",
]


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_cluster_named_like_another_is_refused(db, actor, name):
    ClusterFactory(name="prod")

    with pytest.raises(ValidationError) as refused:
        cluster_create(actor=actor, data={"name": name})

    assert "name" in refused.value.message_dict


@pytest.mark.parametrize("name", ["HV-A", "\uff48\uff56\uff0d\uff41", "hv-a\u2060"])
def test_a_host_named_like_another_is_refused(db, actor, name):
    host = HostFactory(name="hv-a")

    with pytest.raises(ValidationError) as refused:
        host_create(
            actor=actor,
            data={"name": name, "cluster": host.cluster, "address": "10.0.0.9", "libvirt_uri": "qemu:///system"},
        )

    assert "name" in refused.value.message_dict


def test_the_database_refuses_a_look_alike_that_skips_validation(db):
    ClusterFactory(name="prod")

    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.create(name="PROD")


def test_renaming_keeps_the_key_in_step(db, actor):
    from clusters.services import cluster_update

    cluster = ClusterFactory(name="prod")
    cluster_update(actor=actor, cluster=cluster, data={"name": "Staging"})

    assert Cluster.objects.get(pk=cluster.pk).name_key == "staging"
    ClusterFactory(name="prod")  # the old name is free again


def test_a_cluster_keeps_its_own_name_on_save(db, actor):
    from clusters.services import cluster_update

    cluster = ClusterFactory(name="Prod")

    cluster_update(actor=actor, cluster=cluster, data={"description": "again"})


@pytest.mark.parametrize("name", ["db\x00", "db\u200b1", "\u202edb", "db\u2028", "db\x1b[31m"])
def test_a_vm_name_with_control_or_format_characters_is_refused(db, actor, name):
    host = HostFactory()

    with pytest.raises(ValidationError) as refused:
        vm_create(
            actor=actor,
            data={
                "name": name,
                "host": host,
                "uuid": "6f1b5a2e-0d0c-4b1e-9a33-2d0e7f3c9b10",
                "memory_mib": 1,
                "vcpus": 1,
            },
        )

    assert "name" in refused.value.message_dict


def test_vm_names_may_repeat(db, actor):
    from tests.factories import VMFactory

    vm = VMFactory(name="web")
    vm_create(
        actor=actor,
        data={
            "name": "WEB",
            "host": vm.host,
            "uuid": "6f1b5a2e-0d0c-4b1e-9a33-2d0e7f3c9b11",
            "memory_mib": 1,
            "vcpus": 1,
        },
    )


def test_a_reported_name_is_made_storable_not_refused():
    assert reported_name("guest\u202e\x00name ") == "guest\ufffd\ufffdname"
    assert reported_name("\x00") == "\ufffd"
    assert len(reported_name("x" * 500)) == 100


def test_the_key_folds_case_width_and_spaces():
    assert name_key("  \uff30\uff52\uff4f\uff44   East ") == name_key("prod east") == "prod east"
    assert name_key("Straße") == name_key("STRASSE")


def test_bulk_created_rows_get_their_key_too(db):
    Cluster.objects.bulk_create([Cluster(name="Bulk A"), Cluster(name="bulk b")])

    assert sorted(Cluster.objects.filter(name__startswith="").values_list("name_key", flat=True)) == [
        "bulk a",
        "bulk b",
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.bulk_create([Cluster(name="BULK A")])
