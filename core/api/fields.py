"""Serializer fields that accept exactly the JSON types the OpenAPI schema promises.

DRF is lenient by default: "5" is an integer, "yes" a boolean, 5 a string, and 0 a UUID (the
Legacy policy's). A script that sends the wrong type should hear so, and the fuzzing tests hold
the API to its schema, so these fields take only the documented JSON type.
"""

from __future__ import annotations

import re
import uuid
from typing import cast

from django.core.validators import RegexValidator
from django.db import models
from rest_framework import serializers

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# Names and other one-line strings: no control characters (this also keeps NUL out of PostgreSQL).
# Patterns match non-empty strings only: DRF checks blank values before validators, and the schema
# then says "pattern, or empty" without both alternatives matching "".
ONE_LINE = RegexValidator(r"^[^\x00-\x1f\x7f]+\Z", "Control characters are not allowed here.")
# Multi-line text: anything PostgreSQL can store, which is everything but NUL.
NO_NUL = RegexValidator(r"^[^\x00]+\Z", "NUL characters are not allowed.")


def ecma_regex(validator: RegexValidator, *, ascii_only: bool = False) -> RegexValidator:
    """The same rule as `validator`, anchored the way JSON Schema (ECMA 262) reads `$`.

    Python's `$` also matches before a trailing newline, so "host\\n" would pass a model's
    `^...$` validator while the schema's pattern refuses it. `ascii_only` turns `\\S` into
    printable ASCII, because Python and ECMA disagree on a few Unicode whitespace characters.
    """
    # RegexValidator compiles its regex in __init__; the stubs type the attribute as the
    # uncompiled `str | Pattern` it may be given.
    pattern = cast(re.Pattern[str], validator.regex).pattern
    if pattern.endswith("$"):
        pattern = pattern[:-1] + r"\Z"
    if ascii_only:
        pattern = pattern.replace(r"\S", "[!-~]")
    return RegexValidator(pattern, validator.message, code=validator.code)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes
        return False
    return True


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Not a valid string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _encodable(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """A choice in its own JSON type: a string for text choices, a number for integer ones
    (never "50" for 50, nor true for 1)."""

    def to_internal_value(self, data):
        kinds = {type(key) for key in self.choices} or {str}
        if isinstance(data, bool) or type(data) not in kinds:
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        if not isinstance(data, str) or not UUID_RE.match(data):
            self.fail("invalid", value=data)
        return uuid.UUID(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference by primary key: a UUID string, or the key string of a ClusterLevel ("4.7")."""

    default_error_messages = {
        "incorrect_type": "Incorrect type. Expected the primary key as a string, received {data_type}.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _encodable(data) or "\x00" in data:
            self.fail("incorrect_type", data_type=type(data).__name__)
        queryset = self.get_queryset()
        if queryset is not None and isinstance(queryset.model._meta.pk, models.UUIDField) and not UUID_RE.match(data):
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)
