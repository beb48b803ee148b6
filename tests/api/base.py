"""CRUD, audit, ETag/If-Match and error tests written once, run for every versioned resource
(as NetBox's utilities/testing/api.py does). A resource's test class says how to make an object,
what to create and change it with, and one invalid field."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import AuditEntry

pytestmark = pytest.mark.django_db


class ResourceTests:
    url: str  # e.g. "/api/clusters/"
    model: type
    object_type: str  # AuditEntry.object_type
    filter_param: str  # a filter that takes a choice or a reference: an unknown value is a 400

    def make(self, estate) -> Any:
        """A stored object that can be changed and deleted."""
        raise NotImplementedError

    def create_data(self, estate) -> dict:
        raise NotImplementedError

    def change(self) -> dict:
        """A PATCH body; its fields must differ from make()'s."""
        raise NotImplementedError

    def other_change(self) -> dict:
        """Another valid PATCH body, with the same fields as change() and different values."""
        raise NotImplementedError

    def wrong_type(self) -> tuple[dict, str]:
        """A PATCH body with a value of the wrong JSON type, and the field it names."""
        raise NotImplementedError

    def detail(self, obj) -> str:
        return f"{self.url}{obj.pk}/"

    # reads

    def test_list_is_paginated(self, api, estate):
        response = api.get(self.url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"count", "count_is_estimate", "next", "previous", "results"}
        assert body["count"] == self.model.objects.count() == len(body["results"])
        assert body["count_is_estimate"] is False

    def test_retrieve_carries_the_version_as_etag(self, api, estate):
        obj = self.make(estate)
        response = api.get(self.detail(obj))
        assert response.status_code == 200
        assert response["ETag"] == f'"{obj.version}"'
        assert response.json()["version"] == obj.version

    def test_unknown_object_is_a_json_404(self, api, estate):
        response = api.get(f"{self.url}00000000-0000-4000-8000-000000000000/")
        assert response.status_code == 404
        assert "detail" in response.json()
        malformed = api.get(f"{self.url}not-an-id/")
        assert malformed.status_code == 404
        assert "detail" in malformed.json()

    def test_an_unknown_filter_value_is_a_400_not_the_whole_list(self, api, estate):
        response = api.get(self.url, {self.filter_param: "no-such-value"})
        assert response.status_code == 400
        assert self.filter_param in response.json()

    # writes

    def test_create_stores_audits_and_tags(self, api, estate, admin_user):
        before = self.model.objects.count()
        response = api.post(self.url, self.create_data(estate), format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert self.model.objects.count() == before + 1
        assert body["version"] == 1 and response["ETag"] == '"1"'
        entry = AuditEntry.objects.filter(action="create", object_type=self.object_type).latest("pk")
        assert (entry.actor, entry.user, entry.object_id, entry.before) == ("admin", admin_user, body["id"], None)
        assert entry.after["name"] == body["name"]

    def test_patch_with_the_current_etag_applies_and_audits(self, api, estate):
        obj = self.make(estate)
        response = api.patch(self.detail(obj), self.change(), format="json", HTTP_IF_MATCH=f'"{obj.version}"')
        assert response.status_code == 200, response.json()
        assert response.json()["version"] == obj.version + 1
        assert response["ETag"] == f'"{obj.version + 1}"'
        for name, value in self.change().items():
            assert response.json()[name] == value
        entry = AuditEntry.objects.filter(action="update", object_id=str(obj.pk)).latest("pk")
        assert set(entry.after) == set(self.change())
        assert all(entry.before[name] != entry.after[name] for name in entry.after)

    def test_a_stale_etag_is_a_412_that_says_what_changed_and_stores_nothing(self, api, estate):
        obj = self.make(estate)
        assert api.patch(self.detail(obj), self.change(), format="json").status_code == 200
        stale = self.other_change()
        audit = AuditEntry.objects.count()

        response = api.patch(self.detail(obj), stale, format="json", HTTP_IF_MATCH=f'"{obj.version}"')

        assert response.status_code == 412
        body = response.json()
        assert (body["expected_version"], body["current_version"]) == (obj.version, obj.version + 1)
        assert body["current"]["version"] == obj.version + 1
        changed = {name for name, value in stale.items() if value != self.change()[name]}
        assert set(body["differences"]) == changed
        assert AuditEntry.objects.count() == audit
        obj.refresh_from_db()
        assert obj.version == body["current_version"]

    def test_a_stale_put_is_a_412_too(self, api, estate):
        obj = self.make(estate)
        current = api.get(self.detail(obj)).json()
        api.patch(self.detail(obj), self.change(), format="json")
        response = api.put(self.detail(obj), current, format="json", HTTP_IF_MATCH=f'"{current["version"]}"')
        assert response.status_code == 412

    def test_weak_tags_lists_and_star_are_understood(self, api, estate):
        obj = self.make(estate)
        url = self.detail(obj)
        assert api.patch(url, {}, format="json", HTTP_IF_MATCH=f'W/"{obj.version}"').status_code == 200
        # An empty PATCH changes nothing, so the version stays.
        assert api.patch(url, {}, format="json", HTTP_IF_MATCH=f'"999", "{obj.version}"').status_code == 200
        assert api.patch(url, {}, format="json", HTTP_IF_MATCH="*").status_code == 200
        assert api.patch(url, {}, format="json", HTTP_IF_MATCH='"999", "998"').status_code == 412

    def test_a_malformed_if_match_is_a_400(self, api, estate):
        obj = self.make(estate)
        response = api.patch(self.detail(obj), self.change(), format="json", HTTP_IF_MATCH="version 3")
        assert response.status_code == 400
        assert "If-Match" in response.json()
        obj.refresh_from_db()
        assert obj.version == 1

    def test_without_if_match_the_write_proceeds(self, api, estate):
        obj = self.make(estate)
        api.patch(self.detail(obj), self.change(), format="json")
        response = api.patch(self.detail(obj), self.other_change(), format="json")
        assert response.status_code == 200
        assert response.json()["version"] == obj.version + 2

    def test_a_patch_that_changes_nothing_stores_nothing(self, api, estate):
        obj = self.make(estate)
        audit_before = AuditEntry.objects.count()
        response = api.patch(self.detail(obj), {}, format="json")
        assert response.status_code == 200
        assert response.json()["version"] == obj.version
        assert AuditEntry.objects.count() == audit_before

    def test_a_value_of_the_wrong_type_is_a_400_with_a_field_message(self, api, estate):
        obj = self.make(estate)
        body, field = self.wrong_type()
        response = api.patch(self.detail(obj), body, format="json")
        assert response.status_code == 400
        assert field in response.json() and isinstance(response.json()[field], list)
        obj.refresh_from_db()
        assert obj.version == 1

    def test_delete_is_audited(self, api, estate):
        obj = self.make(estate)
        response = api.delete(self.detail(obj), HTTP_IF_MATCH=f'"{obj.version}"')
        assert response.status_code == 204
        assert not self.model.objects.filter(pk=obj.pk).exists()
        entry = AuditEntry.objects.get(action="delete", object_id=str(obj.pk))
        assert entry.before["name"] == obj.name and entry.after is None

    def test_a_stale_delete_is_a_412(self, api, estate):
        obj = self.make(estate)
        api.patch(self.detail(obj), self.change(), format="json")
        response = api.delete(self.detail(obj), HTTP_IF_MATCH=f'"{obj.version}"')
        assert response.status_code == 412
        assert self.model.objects.filter(pk=obj.pk).exists()
