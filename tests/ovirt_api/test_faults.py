"""Bad input to the oVirt-compatible API: every refusal is a clear <fault> (or the SSO endpoint's
JSON error), nothing is stored or audited, and nothing becomes a 500."""

from __future__ import annotations

import time
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.utils import timezone

from clusters.models import Cluster
from core.models import AuditEntry
from migrations_app.models import MigrationJob
from ovirt_api.models import SsoToken
from tests.ovirt_api.conftest import OvirtClient, login

pytestmark = pytest.mark.django_db

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<cluster><description>&lol9;</description></cluster>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE cluster [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<cluster><description>&secret;</description></cluster>"""
DTD_ONLY = """<?xml version="1.0"?><!DOCTYPE cluster SYSTEM "http://example.invalid/x.dtd"><cluster/>"""


def fault_of(response, status: int) -> tuple[str, str]:
    """The reason and detail of a <fault> answer (also inside a failed <action>)."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(response.content)  # noqa: S314  (Ferry's own answer)
    if root.tag == "action":
        assert root.findtext("status") == "failed"
        root = root.find("fault")
    assert root is not None and root.tag == "fault", response.content[:500]
    return root.findtext("reason"), root.findtext("detail")


@pytest.fixture
def untouched(ovirt_estate):
    """Asserts that the test changed no cluster, started no job and wrote no audit entry."""
    clusters = list(Cluster.objects.values_list("pk", "version"))
    audit = AuditEntry.objects.count()
    yield
    assert list(Cluster.objects.values_list("pk", "version")) == clusters
    assert not MigrationJob.objects.exists()
    assert AuditEntry.objects.count() == audit


# Hostile and malformed bodies.


def test_malformed_xml_is_a_fault(ovirt, ovirt_estate, untouched):
    response = ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", "<cluster><name>x</cluster>")

    reason, detail = fault_of(response, 400)
    assert reason == "Operation Failed"
    assert "not well-formed XML" in detail and "mismatched tag" in detail


def test_an_xml_bomb_is_refused_before_any_expansion(ovirt, ovirt_estate, untouched):
    started = time.monotonic()
    response = ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", BILLION_LAUGHS)

    _, detail = fault_of(response, 400)
    assert "a DTD, entities or external references is not accepted" in detail
    assert time.monotonic() - started < 2
    assert b"lollol" not in response.content


def test_an_external_entity_is_never_read(ovirt, ovirt_estate, untouched):
    response = ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", EXTERNAL_ENTITY)

    _, detail = fault_of(response, 400)
    assert "not accepted" in detail
    assert b"root:" not in response.content


def test_a_dtd_alone_is_refused(ovirt, ovirt_estate, untouched):
    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", DTD_ONLY), 400)

    assert "DTD" in detail


def test_an_xml_bomb_in_a_migrate_action_is_a_failed_action(ovirt, ovirt_estate, untouched):
    bomb = BILLION_LAUGHS.replace("<cluster><description>&lol9;</description></cluster>", "<action>&lol9;</action>")

    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", bomb), 400)

    assert "not accepted" in detail


def test_deep_nesting_is_refused_not_recursed(ovirt, ovirt_estate, untouched):
    body = "<cluster>" + "<migration>" * 1000 + "</migration>" * 1000 + "</cluster>"

    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", body), 400)

    assert "nests deeper than 16 levels" in detail


def test_deep_json_nesting_is_refused_not_recursed(ovirt, ovirt_estate, untouched):
    body = '{"migration": ' * 3000 + "{}" + "}" * 3000

    response = ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", body, headers={"Content-Type": "application/json"})

    _, detail = fault_of(response, 400)
    assert "nests deeper" in detail or "not valid JSON" in detail


def test_an_oversized_body_is_a_413_fault(ovirt, ovirt_estate, untouched):
    body = "<cluster><description>" + "x" * 70_000 + "</description></cluster>"

    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", body), 413)

    assert "larger than 65536 bytes" in detail


def test_a_body_beyond_djangos_own_limit_is_a_413_fault_too(ovirt, ovirt_estate, untouched):
    body = "<action>" + "x" * 3_000_000 + "</action>"

    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", body), 413)

    assert "larger than 65536 bytes" in detail


def test_the_wrong_root_element_is_a_fault(ovirt, ovirt_estate, untouched):
    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", "<vm><name>x</name></vm>"), 400)

    assert detail == "[The request body must be a <cluster> element, not <vm>.]"


def test_an_element_ferry_cannot_honour_is_a_fault_not_ignored(ovirt, ovirt_estate, untouched):
    body = "<cluster><ballooning_enabled>true</ballooning_enabled></cluster>"

    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", body), 400)

    assert "Ferry does not support <ballooning_enabled> in <cluster>" in detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<cluster><migration><custom_parallel_migrations>four</custom_parallel_migrations></migration></cluster>",
            'custom_parallel_migrations> must be an integer, not "four"',
        ),
        (
            "<cluster><migration><encrypted>maybe</encrypted></migration></cluster>",
            '"maybe" is not one of: inherit, true, false',
        ),
        (
            "<cluster><migration><parallel_migrations_policy>inherit</parallel_migrations_policy></migration>"
            "</cluster>",
            "cannot be inherit: only a VM's can",
        ),
        ("<cluster><migration><policy/></migration></cluster>", "always has a migration policy"),
        (
            '<cluster><migration><policy id="00000000-0000-0000-0000-00000000beef"/></migration></cluster>',
            "No migration policy has the id",
        ),
        ("<cluster><version><major>4</major><minor>99</minor></version></cluster>", "no compatibility version 4.99"),
        ("<cluster><error_handling><on_error>panic</on_error></error_handling></cluster>", '"panic" is not one of'),
        ('<cluster id="00000000-0000-0000-0000-000000000001"/>', "not the id of the cluster in the URL"),
        (
            "<cluster><migration><parallel_migrations_policy>custom</parallel_migrations_policy></migration></cluster>",
            "Enter the number of parallel connections (2..255) for a custom setting.",
        ),
        (
            "<cluster><migration><parallel_migrations_policy>custom</parallel_migrations_policy>"
            "<custom_parallel_migrations>999</custom_parallel_migrations></migration></cluster>",
            "Parallel connections must be 2..255.",
        ),
        ('<cluster xmlns="urn:x"><name>x</name></cluster>', "must be a <cluster> element"),
        ("<cluster><name><first>a</first></name></cluster>", "<cluster><name> must be a single value"),
    ],
)
def test_invalid_cluster_updates_are_faults_with_ferrys_message(ovirt, ovirt_estate, untouched, body, message):
    _, detail = fault_of(ovirt.put(f"/clusters/{ovirt_estate.prod.pk}", body), 400)

    assert message in detail


def test_malformed_json_is_a_fault(ovirt, ovirt_estate, untouched):
    response = ovirt.put(
        f"/clusters/{ovirt_estate.prod.pk}", '{"migration": ', headers={"Content-Type": "application/json"}
    )

    _, detail = fault_of(response, 400)
    assert "not valid JSON" in detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<action><host>", "not well-formed XML"),
        ("<action><host/></action>", 'Name the destination as <host id="..."/>'),
        ('<action><host id="not-a-uuid"/></action>', 'No host has the id "not-a-uuid"'),
        ("<action><host><name>nowhere</name></host></action>", 'No host is named "nowhere"'),
        ("<action><host><name>hv-b</name></host><force>perhaps</force></action>", "<force> is true or false"),
        ("<action><host><name>hv-b</name></host><disks/></action>", "Ferry does not support <disks> in this action"),
        ("<action><host><name>hv-a</name></host></action>", "The destination is the VM's current host."),
    ],
)
def test_invalid_migrate_actions_are_failed_actions(ovirt, ovirt_estate, untouched, body, message):
    _, detail = fault_of(ovirt.post(f"/vms/{ovirt_estate.vm.pk}/migrate", body), 400)

    assert message in detail


def test_an_invalid_correlation_id_is_a_fault(ovirt, ovirt_estate, untouched):
    response = ovirt.post(
        f"/vms/{ovirt_estate.vm.pk}/migrate", "<action><host><name>hv-b</name></host></action>", correlation_id="a b"
    )

    _, detail = fault_of(response, 400)
    assert "A correlation id is 1..50 letters" in detail


# Searches and query parameters.


@pytest.mark.parametrize(
    ("path", "search", "message"),
    [
        ("/vms", "color=red", 'Unknown search field "color" for vms; Ferry searches vms by cluster, host, id, name'),
        ("/hosts", "vendor=acme", 'Unknown search field "vendor" for hosts'),
        ("/clusters", "status=up", 'Unknown search field "status" for clusters; Ferry searches clusters by id, name.'),
        ("/jobs", "owner=admin", 'Unknown search field "owner" for jobs'),
        ("/vms", "name=a or name=b", 'joins terms with "and" only; "or" is not supported'),
        ("/vms", "name=a sortby name", 'does not support "sortby"'),
        ("/vms", "memory>1000", 'supports = and != only, not ">"'),
        ("/vms", 'name="open', "unterminated quote"),
        ("/vms", "name=", 'The search term "name=" has no value'),
        ("/vms", "status=flying", '"flying" is not a VM status'),
        ("/hosts", "status=unknown", '"unknown" is not a host status'),
        ("/vms", "name=a and", 'ends with "and"'),
        ("/vms", "=x", 'has "=" without a field name'),
    ],
)
def test_bad_searches_are_clear_faults(ovirt, ovirt_estate, path, search, message):
    _, detail = fault_of(ovirt.get(path, search=search), 400)

    assert message in detail


def test_max_must_be_a_number(ovirt, ovirt_estate):
    _, detail = fault_of(ovirt.get("/vms", max="ten"), 400)

    assert 'max is a number of vms, not "ten"' in detail


def test_an_unknown_query_parameter_is_a_fault_not_ignored(ovirt, ovirt_estate):
    _, detail = fault_of(ovirt.get("/vms", follow="host"), 400)

    assert 'Ferry does not support the query parameter "follow" here' in detail


def test_another_api_version_is_a_fault(ovirt, ovirt_estate):
    _, detail = fault_of(ovirt.get("/vms", headers={"Version": "3"}), 400)

    assert "Ferry speaks version 4 of oVirt's API, not version 3" in detail


# Tokens.


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer ", "Basic YWRtaW5AaW50ZXJuYWw6cHc=", "Token abc", "Bearer " + "x" * 5000],
)
def test_a_missing_or_wrong_token_is_a_401_fault(ovirt_estate, authorization):
    client = OvirtClient(None)
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.get("/vms", headers=headers)

    reason, detail = fault_of(response, 401)
    assert reason == "Unauthorized"
    assert "no valid token" in detail
    assert response["WWW-Authenticate"] == 'Bearer realm="Ferry"'


def test_an_expired_token_is_a_401_not_a_403(ovirt, ovirt_estate):
    SsoToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    fault_of(ovirt.get("/vms"), 401)


def test_a_logged_out_token_is_a_401(ovirt, ovirt_estate):
    logout = Client().post("/ovirt-engine/services/sso-logout", {"scope": "ovirt-app-api", "token": ovirt.token})
    assert logout.status_code == 200 and logout.json() == {}

    fault_of(ovirt.get("/vms"), 401)


def test_a_token_of_a_deactivated_user_is_a_401(ovirt, ovirt_admin, ovirt_estate):
    ovirt_admin.is_active = False
    ovirt_admin.save()

    fault_of(ovirt.get("/vms"), 401)


def test_tokens_are_stored_hashed_and_expire(ovirt_admin, settings):
    settings.FERRY_OVIRT_TOKEN_TTL_S = 600
    response = Client().post(
        "/ovirt-engine/sso/oauth/token",
        {"grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal", "password": "pw-for-tests"},
    )

    body = response.json()
    assert body["token_type"] == "bearer" and body["scope"] == "ovirt-app-api"
    stored = SsoToken.objects.get()
    assert body["access_token"] not in stored.key_hash and len(stored.key_hash) == 64
    assert int(body["exp"]) == int(stored.expires_at.timestamp() * 1000)
    assert timedelta(seconds=590) < stored.expires_at - timezone.now() <= timedelta(seconds=600)
    assert response["Cache-Control"].startswith("max-age=0")
    assert AuditEntry.objects.filter(action="login", actor="admin", object_type="ssotoken").exists()


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({"username": "admin@internal", "password": "wrong"}, "access_denied", "Cannot authenticate user"),
        ({"username": "nobody@internal", "password": "pw-for-tests"}, "access_denied", "Cannot authenticate user"),
        ({"username": "admin@corp.example", "password": "pw-for-tests"}, "access_denied", "Cannot authenticate"),
        ({"username": "", "password": ""}, "access_denied", "Cannot authenticate user"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "grant_type=password only"),
        ({"scope": "openid"}, "invalid_scope", "ovirt-app-api only"),
    ],
)
def test_a_refused_login_is_the_engines_json_error(ovirt_admin, data, code, message):
    form = {"grant_type": "password", "scope": "ovirt-app-api"} | data

    response = Client().post("/ovirt-engine/sso/oauth/token", form)

    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert message in response.json()["error"]
    assert not SsoToken.objects.exists()


def test_the_sso_endpoints_take_post_only(db):
    for path in ("/ovirt-engine/sso/oauth/token", "/ovirt-engine/services/sso-logout"):
        response = Client().get(path)
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert "error" in response.json()


def test_logging_out_an_unknown_token_still_answers_an_empty_object(db):
    response = Client().post("/ovirt-engine/services/sso-logout", {"scope": "ovirt-app-api", "token": "unknown"})

    assert response.status_code == 200 and response.json() == {}


# Paths and methods.


def test_an_unknown_path_is_a_404_fault(ovirt):
    reason, _ = fault_of(ovirt.get("/storagedomains"), 404)
    assert reason == "Not Found"
    fault_of(ovirt.get("/ovirt-engine/nothing-here"), 404)


@pytest.mark.parametrize("pk", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "1%20OR%201=1"])
def test_an_unknown_or_malformed_id_is_a_404_fault(ovirt, ovirt_estate, pk):
    for kind in ("clusters", "hosts", "vms", "jobs"):
        _, detail = fault_of(ovirt.get(f"/{kind}/{pk}"), 404)
        assert "has the id" in detail


def test_an_unsupported_method_is_a_405_fault(ovirt, ovirt_estate):
    response = ovirt.request("DELETE", f"/clusters/{ovirt_estate.prod.pk}")

    reason, detail = fault_of(response, 405)
    assert reason == "Method Not Allowed"
    assert detail == "[DELETE is not supported here; use GET, PUT.]"
    assert response["Allow"] == "GET, PUT"
    assert Cluster.objects.filter(pk=ovirt_estate.prod.pk).exists()


HOSTILE = [
    b"",
    b"\x00\xff\xfe",
    b"<",
    b"<?xml version='1.0' encoding='bogus'?><cluster/>",
    b"<cluster>" + b"&amp;" * 10 + b"</cluster>",
    b"<cluster><name>\xff</name></cluster>",
    b"<cluster><migration>text<policy id='x'/></migration></cluster>",
    b"<cluster><migration><policy><id>x</id></policy></migration></cluster>",
    b"<cluster><migration><bandwidth>fast</bandwidth></migration></cluster>",
    b"<cluster><version>4.7</version></cluster>",
    b"<cluster><name>a</name><name>b</name></cluster>",
    b"[1, 2]",
    b'{"migration": {"policy": [1, 2]}}',
    b'{"host": {"id": {"deep": 1}}}',
    b"<action><host><id>x</id><id>y</id></host></action>",
    b"<action><host id='' /></action>",
    b"<action><cluster>prod</cluster></action>",
    b"<action><migrate_vms_in_affinity_closure>yes</migrate_vms_in_affinity_closure></action>",
]


@pytest.mark.parametrize("body", HOSTILE)
@pytest.mark.parametrize("content_type", ["application/xml", "application/json"])
def test_hostile_bodies_never_become_a_500(ovirt, ovirt_estate, body, content_type):
    for method, path in (
        ("PUT", f"/clusters/{ovirt_estate.prod.pk}"),
        ("POST", f"/vms/{ovirt_estate.vm.pk}/migrate"),
        ("POST", f"/vms/{ovirt_estate.vm.pk}/cancelmigration"),
    ):
        response = ovirt.request(method, path, body, headers={"Content-Type": content_type})
        assert response.status_code < 500, (method, path, response.content[:300])


def test_login_with_a_session_only_is_not_enough(ovirt_admin, ovirt_estate):
    client = Client()
    client.force_login(ovirt_admin)

    response = client.get("/ovirt-engine/api/vms")

    assert response.status_code == 401


def test_a_fresh_login_after_a_401_works(ovirt_admin, ovirt_estate):
    stale = OvirtClient("expired")
    fault_of(stale.get("/vms"), 401)

    fresh = OvirtClient(login(Client(), "admin@internal"))

    assert fresh.get("/vms").status_code == 200
