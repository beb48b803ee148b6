"""oVirt's wire formats: a tree of plain values, written as oVirt's XML or JSON, and request bodies
read back into the same tree.

A tree is a dict. Its keys "href", "id" and "rel" are XML attributes; every other key is a child
element; a list is a repeated element (`{"cluster": [...]}` is `<clusters><cluster/>...</clusters>`
in XML and `{"cluster": [...]}` in JSON, as the engine writes them); None leaves the element out.

Request bodies are untrusted: XML goes through defusedxml with DTDs, entities and external
references forbidden, bodies are size-limited, and nesting is bounded, so that no document can
make the parser expand, fetch or recurse its way into a 500.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any
from xml.etree import ElementTree  # builds documents only: every parse goes through defusedxml

import defusedxml
import defusedxml.ElementTree

from ovirt_api.errors import Fault

ATTRIBUTES = ("href", "id", "rel")
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16
# Characters XML 1.0 cannot carry at all; free text (a description) must never break the document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Tree = dict[str, Any]


def format_time(value: datetime.datetime) -> str:
    """2026-01-31T12:00:00.123Z: what the engine writes and the SDK parses."""
    value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return format_time(value)
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(element: ElementTree.Element, tree: Tree) -> None:
    for key, value in tree.items():
        if value is None:
            continue
        if key in ATTRIBUTES and not isinstance(value, dict | list):
            element.set(key, _text(value))
        elif isinstance(value, list):
            for item in value:
                _child(element, key, item)
        else:
            _child(element, key, value)


def _child(parent: ElementTree.Element, tag: str, value: Any) -> None:
    child = ElementTree.SubElement(parent, tag)
    if isinstance(value, dict):
        _fill(child, value)
    else:
        child.text = _text(value)


def to_xml(tag: str, tree: Tree) -> bytes:
    root = ElementTree.Element(tag)
    _fill(root, tree)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, datetime.datetime):
        return format_time(value)
    return value


def to_json(tree: Tree) -> bytes:
    return json.dumps(_json_value(tree), indent=2).encode()


def wants_json(accept: str) -> bool:
    """oVirt answers in JSON only when asked to, and in XML otherwise (the SDK asks for XML)."""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return JSON_TYPE in types and XML_TYPE not in types[: types.index(JSON_TYPE)]


# Reading request bodies.


def _from_element(element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Fault(f"The request body nests deeper than {MAX_DEPTH} levels.")
    children = list(element)
    if not children and not element.attrib:
        return (element.text or "").strip()
    tree: Tree = dict(element.attrib)
    for child in children:
        if not isinstance(child.tag, str) or child.tag.startswith("{"):
            raise Fault("The request body uses an XML namespace; oVirt's API has none.")
        value = _from_element(child, depth + 1)
        if child.tag in tree:
            previous = tree[child.tag]
            tree[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            tree[child.tag] = value
    return tree


def _from_json(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Fault(f"The request body nests deeper than {MAX_DEPTH} levels.")
    if isinstance(value, dict):
        return {str(key): _from_json(item, depth + 1) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_from_json(item, depth + 1) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_body(body: bytes, content_type: str, *, root: str) -> Tree:
    """The request body as a tree; its XML root element (or the JSON object) must be `root`."""
    if len(body) > MAX_BODY_BYTES:
        raise Fault(f"The request body is larger than {MAX_BODY_BYTES} bytes.", status=413)
    if not body.strip():
        return {}
    if content_type.split(";")[0].strip().lower() == JSON_TYPE:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise Fault(f"The request body is not valid JSON: {str(error)[:200]}") from None
        if not isinstance(value, dict):
            raise Fault(f"The request body must be a JSON object (a {root}).")
        return _from_json(value, 0)
    try:
        element = defusedxml.ElementTree.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as error:
        raise Fault(
            f"The request body was refused: XML with a DTD, entities or external references is not accepted "
            f"({type(error).__name__})."
        ) from None
    except (ElementTree.ParseError, LookupError, ValueError) as error:
        raise Fault(f"The request body is not well-formed XML: {str(error)[:200]}.") from None
    if element.tag != root:
        raise Fault(f"The request body must be a <{root}> element, not <{str(element.tag)[:50]}>.")
    tree = _from_element(element, 0)
    return tree if isinstance(tree, dict) else {}
