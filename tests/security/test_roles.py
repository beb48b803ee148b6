"""Operators run hosts through operate_host and never hold change_host, including groups made
before operate_host existed (the data migration corrects them)."""

from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission

from core.roles import OPERATOR_GROUP, roles_ensure

pytestmark = pytest.mark.django_db

correction = import_module("clusters.migrations.0004_host_operate_permission")


def held(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_roles_give_operators_operate_host_and_not_change_host():
    roles_ensure()
    operators = held(Group.objects.get(name=OPERATOR_GROUP))
    assert "clusters.operate_host" in operators
    assert not {"clusters.change_host", "clusters.add_host", "clusters.delete_host"} & operators


def test_the_data_migration_corrects_an_operators_group_made_before_it():
    group = Group.objects.create(name=OPERATOR_GROUP)
    change_host = Permission.objects.get(content_type__app_label="clusters", codename="change_host")
    job = Permission.objects.get(content_type__app_label="migrations_app", codename="add_migrationjob")
    group.permissions.set([change_host, job])

    correction.correct_operators(apps, None)

    assert held(group) == {"clusters.operate_host", "migrations_app.add_migrationjob"}


def test_the_data_migration_leaves_a_database_without_operators_alone():
    correction.correct_operators(apps, None)
    assert not Group.objects.filter(name=OPERATOR_GROUP).exists()
