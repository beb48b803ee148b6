"""oVirt's `search` query parameter: `name=web*`, `name=db-1 and status=up`, `correlation_id=X`.

Terms are `field=value` or `field!=value`, joined by `and`; a value may be quoted ("my vm") and
may use `*` as a wildcard; a bare word searches by name. Each collection names its own fields; an
unknown field, `or`, `sortby` or another operator is a fault that says what is supported, never
a search that silently matches everything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from ovirt_api.errors import Fault

MAX_SEARCH_LENGTH = 1000
_TOKEN = re.compile(r'\s*(?:"(?P<quoted>[^"]*)"|(?P<op>!=|<=|>=|=|<|>)|(?P<word>[^\s"=!<>]+))')
UNSUPPORTED_WORDS = {"or", "sortby", "page", "asc", "desc"}

# A field's filter: (value, case_sensitive) -> Q.
FieldFilter = Callable[[str, bool], Q]


@dataclass(frozen=True)
class Term:
    field: str
    negate: bool
    value: str


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise Fault(f'The search "{text}" has an unterminated quote.')
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_search(text: str) -> list[Term]:
    if len(text) > MAX_SEARCH_LENGTH:
        raise Fault(f"The search is longer than {MAX_SEARCH_LENGTH} characters.")
    tokens = _tokens(text)
    terms: list[Term] = []
    index = 0
    while index < len(tokens):
        if terms:
            kind, word = tokens[index]
            if kind == "word" and word.lower() in UNSUPPORTED_WORDS - {"or"}:
                raise Fault(f'Ferry\'s search does not support "{word}": use field=value terms joined by "and".')
            if kind != "word" or word.lower() != "and":
                raise Fault(f'Ferry\'s search joins terms with "and" only; "{word}" is not supported here.')
            index += 1
            if index == len(tokens):
                raise Fault('The search ends with "and".')
        kind, word = tokens[index]
        if kind == "op":
            raise Fault(f'The search has "{word}" without a field name before it.')
        if kind == "word" and word.lower() in UNSUPPORTED_WORDS:
            raise Fault(f'Ferry\'s search does not support "{word}": use field=value terms joined by "and".')
        if index + 1 < len(tokens) and tokens[index + 1][0] == "op":
            operator = tokens[index + 1][1]
            if operator not in ("=", "!="):
                raise Fault(f'Ferry\'s search supports = and != only, not "{operator}".')
            if index + 2 >= len(tokens) or tokens[index + 2][0] == "op":
                raise Fault(f'The search term "{word}{operator}" has no value.')
            terms.append(Term(field=word.lower(), negate=operator == "!=", value=tokens[index + 2][1]))
            index += 3
        else:
            terms.append(Term(field="name", negate=False, value=word))
            index += 1
    return terms


def search_filter(text: str | None, fields: dict[str, FieldFilter], *, case_sensitive: bool, collection: str) -> Q:
    """The Q for a search over a collection whose searchable fields are `fields`."""
    condition = Q()
    for term in parse_search(text or ""):
        field = fields.get(term.field)
        if field is None:
            raise Fault(
                f'Unknown search field "{term.field}" for {collection}; Ferry searches {collection} by '
                + ", ".join(sorted(fields))
                + "."
            )
        clause = field(term.value, case_sensitive)
        condition &= ~clause if term.negate else clause
    return condition


def glob(path: str) -> FieldFilter:
    """A text field matched as oVirt matches it: `*` is any run of characters, all else literal."""

    def match(value: str, case_sensitive: bool) -> Q:
        if "*" not in value:
            return Q(**{path if case_sensitive else f"{path}__iexact": value})
        pattern = "^" + ".*".join(re.escape(part) for part in value.split("*")) + "$"
        return Q(**{f"{path}__regex" if case_sensitive else f"{path}__iregex": pattern})

    return match


def exact_uuid(path: str) -> FieldFilter:
    def match(value: str, case_sensitive: bool) -> Q:
        try:
            return Q(**{path: uuid.UUID(value)})
        except ValueError:
            return Q(pk__in=[])  # not an id: matches nothing, as the engine's search does

    return match


def exact(path: str) -> FieldFilter:
    return lambda value, case_sensitive: Q(**{path: value})


def one_of(path: str, mapping: dict[str, tuple[str, ...]], what: str) -> FieldFilter:
    """An enumeration: oVirt's value (any case) -> the Ferry values it stands for."""

    def match(value: str, case_sensitive: bool) -> Q:
        values = mapping.get(value.lower())
        if values is None:
            raise Fault(f'"{value}" is not a {what}; use one of: {", ".join(sorted(mapping))}.')
        return Q(**{f"{path}__in": values})

    return match
