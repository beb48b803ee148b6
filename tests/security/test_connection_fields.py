"""Connection fields are configuration on an allow-list (issue 11): whatever starts a program, names a
local file or reaches an unauthenticated daemon is refused, with a message that says what is allowed,
the same way through the API, the pages and admin; Operators cannot edit them at all."""

import pytest
from django.test import Client

from clusters.models import Host
from core.models import AuditEntry
from ferry_common.uris import check_libvirt_uri
from tests.admin.test_admin import admin_url, form_data
from tests.api.conftest import token_client, user_in_role
from tests.factories import HostFactory, UserFactory

pytestmark = pytest.mark.django_db

ALLOWED_WORDS = "Allowed: qemu:///system"

# Each one was tried as an attack (issue 11): a program, a local file, a rogue daemon.
FORBIDDEN = [
    "qemu+ext:///system?command=/tmp/owned",
    "qemu+ext://127.0.0.3/system?command=/tmp/owned",
    "qemu+ssh://root@hv.example/system?command=/tmp/owned",
    "qemu+ssh://hv.example/system",
    "qemu+ssh://hv.example/system?keyfile=/root/.ssh/id_rsa",
    "qemu+ssh://hv.example/system?known_hosts=/tmp/kh",
    "qemu+tls://hv.example/system?pkipath=/tmp/pki",
    "qemu+tls://hv.example/system?no_verify=1",
    "qemu:///system?socket=/run/libvirt/libvirt-sock",
    "qemu+unix:///system?socket=/tmp/rogue.sock",
    "qemu+tcp://attacker.example/system",
    "qemu+libssh2://hv.example/system",
    "qemu:///session",
    "test:///default",
    "qemu+tls://user@hv.example/system",
    "qemu+tls://hv.example/system#x",
    "qemu+tls://[/system",
    "qemu://[/system",
]
ALLOWED = [
    "qemu:///system",
    "qemu+tls://hv.example/system",
    "qemu+tls://10.1.2.3:16514/system",
    "qemu+tls://[fd00::1]/system",
]


def admin_api():
    return token_client(UserFactory(username="root", is_staff=True, is_superuser=True))


@pytest.mark.parametrize("field", ["libvirt_uri", "peer_uri"])
@pytest.mark.parametrize("uri", FORBIDDEN)
def test_an_admin_cannot_store_a_forbidden_uri_through_the_api(field, uri):
    host = HostFactory()
    before = (Host.objects.values().get(pk=host.pk), AuditEntry.objects.count())

    response = admin_api().patch(f"/api/hosts/{host.pk}/", {field: uri}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert (Host.objects.values().get(pk=host.pk), AuditEntry.objects.count()) == before


@pytest.mark.parametrize("uri", ["qemu+tls://[/system", "qemu://[/system", "qemu+tls://]/system"])
def test_an_unbalanced_bracket_is_refused_not_a_crash(uri):
    from ferry_common.uris import UnsafeURI, check_migrate_uri

    with pytest.raises(UnsafeURI):
        check_libvirt_uri(uri)
    with pytest.raises(UnsafeURI):
        check_migrate_uri(uri.replace("qemu+tls", "tcp").replace("/system", ""))


def test_the_refusal_says_what_is_allowed():
    host = HostFactory()
    response = admin_api().patch(
        f"/api/hosts/{host.pk}/", {"libvirt_uri": "qemu+ext:///system?command=/tmp/owned"}, format="json"
    )
    assert any(ALLOWED_WORDS in message for message in response.json()["libvirt_uri"]), response.json()


@pytest.mark.parametrize("field", ["libvirt_uri", "peer_uri"])
def test_an_admin_cannot_create_a_host_with_a_forbidden_uri(field):
    host = HostFactory()
    data = {"name": "new", "cluster": str(host.cluster_id), "address": "10.9.9.9", "libvirt_uri": "qemu:///system"}
    data[field] = "qemu+ext:///system?command=/tmp/owned"
    response = admin_api().post("/api/hosts/", data, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Host.objects.filter(name="new").exists()


@pytest.mark.parametrize("uri", ALLOWED)
def test_the_allowed_uris_are_stored(uri):
    host = HostFactory()
    response = admin_api().patch(f"/api/hosts/{host.pk}/", {"libvirt_uri": uri, "peer_uri": uri}, format="json")
    assert response.status_code == 200, response.content
    host.refresh_from_db()
    assert (host.libvirt_uri, host.peer_uri) == (uri, uri)


def test_tcp_and_sockets_only_where_the_settings_allow_them(settings, tmp_path):
    host = HostFactory()
    api = admin_api()
    inside = f"qemu:///system?socket={tmp_path}/hosta/libvirt-sock"
    assert (
        api.patch(f"/api/hosts/{host.pk}/", {"peer_uri": "qemu+tcp://127.0.0.3/system"}, format="json").status_code
        == 400
    )
    assert api.patch(f"/api/hosts/{host.pk}/", {"libvirt_uri": inside}, format="json").status_code == 400

    settings.FERRY_LIBVIRT_ALLOW_TCP = True
    settings.FERRY_LIBVIRT_SOCKET_DIRS = [str(tmp_path)]
    assert (
        api.patch(f"/api/hosts/{host.pk}/", {"peer_uri": "qemu+tcp://127.0.0.3/system"}, format="json").status_code
        == 200
    )
    assert api.patch(f"/api/hosts/{host.pk}/", {"libvirt_uri": inside}, format="json").status_code == 200
    outside = api.patch(f"/api/hosts/{host.pk}/", {"libvirt_uri": "qemu:///system?socket=/tmp/x.sock"}, format="json")
    assert outside.status_code == 400 and str(tmp_path) in outside.json()["libvirt_uri"][0]
    escape = f"qemu:///system?socket={tmp_path}/../x.sock"
    assert api.patch(f"/api/hosts/{host.pk}/", {"libvirt_uri": escape}, format="json").status_code == 400


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1/24", "hv a", "hv;reboot", "hv.example?x=1", "[10.0.0.1]", "", "a" * 64 + ".example", "1.2.3.256"],
)
def test_a_migration_address_is_a_host_name_or_an_ip_address(address):
    host = HostFactory()
    response = admin_api().patch(f"/api/hosts/{host.pk}/", {"address": address}, format="json")
    assert response.status_code == 400 and "address" in response.json(), response.content


@pytest.mark.parametrize("address", ["10.0.0.9", "hv-b.migration.example", "fd00::9", "[fd00::9]"])
def test_good_addresses_are_stored(address):
    host = HostFactory()
    assert admin_api().patch(f"/api/hosts/{host.pk}/", {"address": address}, format="json").status_code == 200


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    "field,value",
    [
        ("libvirt_uri", "qemu+ext:///system?command=/tmp/owned"),
        ("peer_uri", "qemu+tls://elsewhere.example/system"),
        ("address", "10.66.66.66"),
        ("name", "renamed"),
        ("cluster", None),
    ],
)
def test_an_operator_edits_no_host_field_through_the_api(method, field, value):
    host = HostFactory()
    other = HostFactory()
    value = str(other.cluster_id) if field == "cluster" else value
    body = {
        "name": host.name,
        "cluster": str(host.cluster_id),
        "address": host.address,
        "libvirt_uri": host.libvirt_uri,
    }
    body[field] = value
    before = (Host.objects.values().get(pk=host.pk), AuditEntry.objects.count())

    response = getattr(token_client(user_in_role("operator")), method)(f"/api/hosts/{host.pk}/", body, format="json")

    assert response.status_code == 403, response.content
    assert (Host.objects.values().get(pk=host.pk), AuditEntry.objects.count()) == before


def test_an_admin_gets_the_refusal_in_the_host_form(admin_client):
    host = HostFactory()
    data = {
        "name": host.name,
        "cluster": host.cluster_id,
        "address": host.address,
        "libvirt_uri": "qemu+ext:///system?command=/tmp/owned",
        "peer_uri": "qemu+ssh://root@hv/system?command=/tmp/owned",
        "version": host.version,
    }
    response = admin_client.post(f"/hosts/{host.pk}/edit/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"libvirt_uri", "peer_uri"} <= set(errors)
    assert ALLOWED_WORDS in errors["libvirt_uri"][0]
    host.refresh_from_db()
    assert host.libvirt_uri.startswith("qemu+tls://")


def test_an_admin_gets_the_refusal_in_django_admin(admin_client):
    host = HostFactory()
    page = admin_client.get(admin_url(Host, "change", host.pk))
    response = admin_client.post(
        admin_url(Host, "change", host.pk), form_data(page, libvirt_uri="qemu+ext:///system?command=/tmp/owned")
    )
    assert response.status_code == 200
    assert ALLOWED_WORDS in str(response.context["adminform"].form.errors["libvirt_uri"])
    host.refresh_from_db()
    assert host.libvirt_uri.startswith("qemu+tls://")


def test_an_operator_in_django_admin_cannot_change_a_uri(db):
    from django.contrib.auth.models import Group

    from core.roles import OPERATOR_GROUP, roles_ensure

    roles_ensure()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    client = Client()
    client.force_login(user)
    host = HostFactory()
    response = client.post(
        admin_url(Host, "change", host.pk),
        {"name": host.name, "cluster": host.cluster_id, "address": host.address, "libvirt_uri": "qemu:///system",
         "peer_uri": "qemu+ext:///system?command=/tmp/owned"},
    )  # fmt: skip
    assert response.status_code == 403
    host.refresh_from_db()
    assert host.peer_uri == ""


@pytest.mark.parametrize(
    "libvirt_uri,address",
    [("qemu:///system", "10.0.0.5"), ("qemu:///system", "fd00::5"), ("qemu+tls://hv.example/system", "10.0.0.5")],
)
def test_the_derived_destination_uri_is_always_allowed(libvirt_uri, address):
    host = HostFactory(libvirt_uri=libvirt_uri, address=address, peer_uri="")
    assert check_libvirt_uri(host.destination_uri) == host.destination_uri
