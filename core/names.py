"""Names people read and type: no invisible or control characters, and no look-alike duplicates.

A cluster's or a host's name is unique after Unicode NFKC normalization and case folding (its
`name_key`, with a unique constraint in the database), so "Prod", "prod", "prod " and its
full-width form are one name. Control (Cc), format (Cf: zero-width space, right-to-left override,
...), surrogate and line/paragraph separator characters are refused in every name, VMs' included.

A VM's name is not unique (libvirt names are unique per host only). A name a hypervisor reports for
a guest it runs is a fact, not input: whoever records one passes it through `reported_name`, which
replaces what `validate_name` would refuse, so an odd guest name never stops an inventory.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

from django.core.exceptions import ValidationError
from django.db import models

REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
REPLACEMENT = "\ufffd"


def name_key(name: str) -> str:
    """The form under which two names are the same: NFKC, case-folded, whitespace runs as one space."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def refused_characters(name: str) -> list[str]:
    return [char for char in name if unicodedata.category(char) in REFUSED_CATEGORIES]


def validate_name(name: str) -> None:
    refused = refused_characters(name)
    if refused:
        shown = ", ".join(sorted({f"U+{ord(char):04X}" for char in refused}))
        raise ValidationError(
            f"A name cannot contain control or invisible formatting characters ({shown}).", code="invalid"
        )


@functools.cache
def name_pattern() -> str:
    """validate_name's character rule as a regular expression, for the API schema (OpenAPI `pattern`):
    built once from the running Python's Unicode tables (about 0.3 s, so only when asked)."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in REFUSED_CATEGORIES:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))

    # A \uXXXX escape names the Basic Multilingual Plane only: the few format characters beyond it
    # (Unicode tags, Egyptian hieroglyph controls, musical symbol formatting) are refused all the same,
    # and so are surrogates, which no JSON text decodes to alone and which regex engines reject in a class.
    def char(code: int) -> str:
        return f"\\u{code:04x}"

    parts = "".join(
        char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges if b <= 0xFFFF and not 0xD800 <= a <= 0xDFFF
    )
    return f"^[^{parts}]+$"


def reported_name(name: str, *, max_length: int = 100) -> str:
    """A name as a hypervisor reported it, made storable: refused characters replaced, trimmed."""
    cleaned = "".join(REPLACEMENT if unicodedata.category(char) in REFUSED_CATEGORIES else char for char in name)
    return cleaned.strip()[:max_length] or REPLACEMENT


class NameKeyField(models.TextField):
    """The model's `name` under name_key, computed whenever the row is written: save() and
    bulk_create() alike (both ask each field for its value through pre_save). A queryset's update()
    does not: rename through the services."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("help_text", "The name, normalized and case-folded, for uniqueness.")
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance, add):
        value = name_key(getattr(model_instance, "name", "") or "")
        setattr(model_instance, self.attname, value)
        return value


class UniqueNameModel(models.Model):
    """`name` unique after normalization: `name_key` is set and checked in clean() (the services'
    full_clean, whose values an update stores) and on every write (NameKeyField). Each model declares
    the unique constraint on name_key in its own Meta."""

    name_key = NameKeyField()

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        name = getattr(self, "name", "") or ""
        # validate_name refuses a name with refused characters; a NUL must not even reach a query
        # (PostgreSQL refuses it in text), so such a name has no key to compare.
        self.name_key = "" if refused_characters(name) else name_key(name)

    def validate_unique(self, exclude=None) -> None:
        """The look-alike check sits with the unique checks, after clean(): a taken name is
        reported with every other problem of the object, and once (on the name)."""
        exclude = set(exclude or ())
        errors: dict[str, list[ValidationError]] = {}
        key = self.name_key
        if (
            "name" not in exclude
            and key
            and type(self)._default_manager.filter(name_key=key).exclude(pk=self.pk).exists()
        ):
            label = self._meta.verbose_name
            message = f"A {label} with this name already exists (names are compared ignoring case and look-alikes)."
            errors["name"] = [ValidationError(message, code="unique")]
            exclude.add("name")
        try:
            super().validate_unique(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None) -> None:
        # The constraint on name_key is the look-alike check above, which names the field.
        super().validate_constraints(exclude={*(exclude or ()), "name_key"})
