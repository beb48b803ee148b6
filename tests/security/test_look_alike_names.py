"""Look-alike names through the API and the pages: refused on the name field (core.names)."""

from __future__ import annotations

from clusters.models import Cluster


def test_the_api_answers_a_look_alike_with_400_on_name(api, estate):
    response = api.post("/api/clusters/", {"name": "PROD"}, format="json")

    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]


def test_the_page_form_answers_a_look_alike_on_the_name_field(client, admin_user, estate):
    client.force_login(admin_user)

    response = client.post("/clusters/add/", {"name": "\uff30rod", "compatibility_version": "4.7"})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Cluster.objects.filter(name="\uff30rod").count() == 0
