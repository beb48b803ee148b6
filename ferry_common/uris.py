"""The allow-list for every URI that reaches libvirt: connection URIs and migration addresses.

A libvirt URI can start a program (`qemu+ext://...?command=`, `qemu+ssh://...?command=`), name a
local file (`socket=`, `keyfile=`, `pkipath=`, `known_hosts=`), or connect to a daemon without
authentication (`qemu+tcp://`). So Ferry accepts only:

- `qemu:///system`: the local daemon;
- `qemu+tls://<host>[:port]/system`: a remote daemon over TLS;
- `qemu+tcp://<host>[:port]/system`: only where `allow_tcp` is on (a lab, never production);
- `qemu:///system?socket=<absolute path>`: only where the path lies inside one of `socket_dirs`.

Nothing else: no other transport, no user name, no other query parameter, no fragment. The same
check runs where a value is stored (model validation) and again right before libvirt opens it
(the host agent), so a row written any other way still cannot start a program.

Pure Python with no Django import: the host agent, which has no Django, uses it as it is.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ALLOWED_TEXT", "UnsafeURI", "check_host_name", "check_libvirt_uri", "check_migrate_uri"]

ALLOWED_TEXT = (
    "Allowed: qemu:///system (the local daemon) or qemu+tls://<host>[:port]/system "
    "(qemu+tcp:// only where the deployment allows it, and ?socket= only inside its configured socket "
    "directories); no other transport or query parameter."
)

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MAX_URI = 500


class UnsafeURI(ValueError):
    """A URI outside the allow-list. The message says what is allowed."""


def check_host_name(host: str) -> str:
    """A DNS name, an IPv4 address or a bracketed IPv6 address; returns it unchanged."""
    if not host or len(host) > 253:
        raise UnsafeURI("A host name or IP address is required.")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UnsafeURI(f"{host!r} is not a valid IPv6 address.") from None
        return host
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UnsafeURI(f"{host!r} is not a valid IPv4 address.") from None
        return host
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise UnsafeURI(f"{host!r} is not a host name or IP address.")
    return host


def _check_chars(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise UnsafeURI(f"A {what} is required.")
    if len(value) > _MAX_URI:
        raise UnsafeURI(f"The {what} is longer than {_MAX_URI} characters.")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise UnsafeURI(f"The {what} may contain only printable ASCII characters, without spaces.")


def _split(uri: str, what: str):
    try:
        return urlsplit(uri)
    except ValueError as error:  # an unbalanced [ or ] in the host part
        raise UnsafeURI(f"The {what} is malformed ({error}). {ALLOWED_TEXT}") from None


def _netloc(parts, what: str) -> str:
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURI(f"A {what} may not carry a user name or password. {ALLOWED_TEXT}")
    raw = parts.netloc
    host, port = raw, None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise UnsafeURI(f"{raw!r} is not a valid IPv6 address.")
        host, rest = raw[: end + 1], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UnsafeURI(f"{raw!r} is not host[:port].")
            port = rest[1:]
    elif ":" in raw:
        host, port = raw.rsplit(":", 1)
    check_host_name(host)
    if port is not None and (not port.isdigit() or not 1 <= int(port) <= 65535):
        raise UnsafeURI(f"{port!r} is not a port number (1-65535).")
    return host


def _inside(path: str, directories: Iterable[str]) -> bool:
    real = os.path.realpath(path)
    for directory in directories:
        if not directory:
            continue
        base = os.path.realpath(directory)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def check_libvirt_uri(uri: str, *, allow_tcp: bool = False, socket_dirs: Iterable[str] = ()) -> str:
    """Return `uri` if it is on the allow-list, else raise UnsafeURI saying what is allowed."""
    _check_chars(uri, "libvirt URI")
    parts = _split(uri, "libvirt URI")
    if parts.fragment or uri.endswith("#"):
        raise UnsafeURI(f"A libvirt URI may not have a fragment. {ALLOWED_TEXT}")
    if parts.path != "/system":
        raise UnsafeURI(f"Only the system instance (/system) can be managed. {ALLOWED_TEXT}")
    scheme = parts.scheme
    query = parse_qsl(parts.query, keep_blank_values=True) if parts.query or "?" in uri else []
    if scheme == "qemu":
        if parts.netloc:
            raise UnsafeURI(f"qemu:// names only the local daemon (qemu:///system). {ALLOWED_TEXT}")
        if not query and "?" not in uri:
            return uri
        socket_dirs = [d for d in socket_dirs if d]
        if len(query) != 1 or query[0][0] != "socket" or parts.query.count("&") or parts.query.count(";"):
            raise UnsafeURI(f"The only query parameter allowed is socket=. {ALLOWED_TEXT}")
        path = query[0][1]
        if not socket_dirs:
            raise UnsafeURI(f"socket= is not allowed here: no socket directory is configured. {ALLOWED_TEXT}")
        if not os.path.isabs(path) or any(part == ".." for part in path.split("/")):
            raise UnsafeURI("socket= must be an absolute path without '..'.")
        if not _inside(path, socket_dirs):
            raise UnsafeURI(f"socket= must lie inside {', '.join(socket_dirs)}.")
        return uri
    if scheme in ("qemu+tls", "qemu+tcp"):
        if scheme == "qemu+tcp" and not allow_tcp:
            raise UnsafeURI(f"qemu+tcp:// is unauthenticated and unencrypted and is not allowed here. {ALLOWED_TEXT}")
        if "?" in uri:
            raise UnsafeURI(f"A remote libvirt URI may not have query parameters. {ALLOWED_TEXT}")
        _netloc(parts, "libvirt URI")
        return uri
    raise UnsafeURI(f"The transport {scheme or '(none)'!r} is not allowed. {ALLOWED_TEXT}")


def check_migrate_uri(uri: str) -> str:
    """The plan's migrate_uri: tcp://<host>[:port] and nothing else (it carries the guest's RAM)."""
    _check_chars(uri, "migration URI")
    parts = _split(uri, "migration URI")
    if parts.scheme != "tcp" or parts.path not in ("", "/") or "?" in uri or "#" in uri:
        raise UnsafeURI("The migration URI must be tcp://<host>[:port].")
    _netloc(parts, "migration URI")
    return uri
