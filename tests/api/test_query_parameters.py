"""An API list refuses a query parameter it does not read, naming it, instead of ignoring it."""

from __future__ import annotations

import pytest

LISTS = [
    "/api/cluster-levels/",
    "/api/clusters/",
    "/api/hosts/",
    "/api/vms/",
    "/api/migration-policies/",
    "/api/migrations/",
    "/api/audit-log/",
]


def test_a_misnamed_search_is_a_400_naming_it_not_every_vm(api, estate):
    response = api.get("/api/vms/", {"search": "db-1"})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["search"]
    assert "Unknown query parameter" in body["search"][0]
    assert " q," in body["search"][0]


@pytest.mark.parametrize("url", LISTS)
def test_every_list_refuses_an_unknown_name_and_accepts_its_own(api, estate, url):
    assert api.get(url, {"no_such_thing": "1", "ordering": "-id"}).json().keys() == {"no_such_thing"}
    assert api.get(url, {"limit": "1", "offset": "0"}).status_code == 200


def test_every_unknown_name_is_named(api, estate):
    body = api.get("/api/clusters/", {"a": "1", "b": "2", "q": "prod"}).json()

    assert set(body) == {"a", "b"}


def test_the_documented_filters_are_all_accepted(api, estate):
    response = api.get(
        "/api/vms/", {"q": "db", "host": str(estate.source.pk), "status": "up", "ordering": "name", "limit": "5"}
    )

    assert response.status_code == 200


def test_a_detail_url_ignores_its_query_string(api, estate):
    assert api.get(f"/api/clusters/{estate.cluster.pk}/", {"anything": "1"}).status_code == 200


def test_anonymous_still_gets_401_first(client_for, estate):
    assert client_for("anonymous").get("/api/vms/", {"search": "x"}).status_code == 401
