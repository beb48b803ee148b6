"""What every edit page's form shares: model fields as inputs, service errors on fields, stale edits.

Forms here only parse input. The services validate the model (full_clean) and are the one
authority on what may be stored; their ValidationError is put back on the form's fields.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, ValidationError
from django.db import models
from django.utils.datastructures import MultiValueDict

from core.rules import Rule

LOADED_SALT = "ferry.forms.loaded-values"
EMPTY = "—"
RULE_CODES = frozenset(rule.value for rule in Rule)


def _one_message(errors: list[ValidationError]) -> str:
    """One problem, one message: a field that fails both a generic check (a range) and the model's
    own rule (which says why) shows the rule's message only. The model's clean() runs after the
    field checks, so without a named rule its message is the last."""
    ruled = [error for error in errors if error.code in RULE_CODES]
    chosen = ruled[0] if ruled else errors[-1]
    return chosen.messages[0]


def apply_validation_error(form: forms.BaseForm, error: ValidationError, *, only_new: bool = False) -> None:
    """Show a service's ValidationError on the field it names (one message a field), or above the form.

    With `only_new`, a field that already shows an error keeps its own, and nothing goes above the
    form: the errors are a check made after some fields failed to parse (see model_errors).
    """
    if not hasattr(error, "error_dict"):
        if not only_new:
            form.add_error(None, error.messages)
        return
    for field, errors in error.error_dict.items():
        if field != NON_FIELD_ERRORS and field in form.fields and not form.fields[field].widget.is_hidden:
            if not (only_new and field in form.errors):
                form.add_error(field, _one_message(errors))
        elif not only_new:
            form.add_error(None, [message for error in errors for message in error.messages])


def _plain(value: Any) -> Any:
    """A JSON-safe, comparable form of an initial or stored value."""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Change:
    """One field that someone else changed while the form was open."""

    label: str
    before: str  # when this form was loaded
    theirs: str  # stored now
    yours: str  # in the form that was refused


class VersionedModelForm(forms.ModelForm):
    """A model form that carries the version it was loaded at, and the values it showed then.

    `version` goes to the service as expected_version; `loaded_values` (signed) lets a refused
    stale edit say, field by field, what the other person changed.
    """

    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    loaded_values = forms.CharField(required=False, widget=forms.HiddenInput)

    hidden_names = ("version", "loaded_values")
    # A request's POST or GET (a QueryDict), or the empty MultiValueDict of an unbound form.
    data: MultiValueDict[str, Any]

    def __init__(self, data: MultiValueDict[str, Any] | None = None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.is_bound:
            self.data = self._with_omitted_filled(self.data)
        if self.instance.pk is not None and not self.instance._state.adding:
            self.initial["version"] = getattr(self.instance, "version", None)
            self.initial["loaded_values"] = signing.dumps(self.snapshot(), salt=LOADED_SALT, compress=True)

    def typed_field[F: forms.Field](self, name: str, kind: type[F]) -> F:
        """The form field `name`, which the model's field makes a `kind` (a choice, a foreign key)."""
        field = self.fields[name]
        if not isinstance(field, kind):
            raise TypeError(f"{type(self).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}.")
        return field

    def _post_clean(self):
        # Model validation belongs to the services (they run full_clean); see apply_validation_error.
        pass

    def _with_omitted_filled(self, data):
        """Inputs missing from a post keep their current (or default) value, as a PATCH would.

        Unchecked checkboxes are never posted, so a missing checkbox means False, as usual.
        """
        data = data.copy()
        for name, field in self.fields.items():
            if name in self.hidden_names or isinstance(field.widget, forms.CheckboxInput):
                continue
            if field.widget.value_omitted_from_data(data, self.files, self.add_prefix(name)):
                value = _plain(self.get_initial_for_field(field, name))
                if value is not None:
                    data[self.add_prefix(name)] = json.dumps(value) if isinstance(value, dict) else value
        return data

    def check_the_rest(self) -> None:
        """After some inputs failed to parse, check the others against the model too.

        Without this, a form with a missing name would report only that, and the model's own rules
        (a custom bandwidth without a figure, say) on the next submit: every problem is reported in
        one round. The inputs that failed are left out; the service remains the one that decides.
        """
        candidate = copy.copy(self.instance)
        failed = set(self.errors)
        for name, value in self.service_data().items():
            if name not in failed:
                setattr(candidate, name, value)
        excluded = [field.name for field in candidate._meta.fields if field.name in failed]
        try:
            candidate.full_clean(exclude=excluded)
        except ValidationError as error:
            apply_validation_error(self, error, only_new=True)
        except (ObjectDoesNotExist, AttributeError, TypeError, ValueError):
            # A rule that needs one of the failed inputs cannot be checked yet; the next submit will.
            return

    def snapshot(self) -> dict[str, Any]:
        """The values this form shows for its object, comparable across loads."""
        return {
            name: _plain(self.get_initial_for_field(field, name))
            for name, field in self.fields.items()
            if name not in self.hidden_names
        }

    def service_data(self) -> dict[str, Any]:
        """What the service receives: the model fields of the form."""
        model_fields = {field.name for field in self.instance._meta.fields} - set(self.hidden_names)
        return {name: value for name, value in self.cleaned_data.items() if name in model_fields}

    def loaded_snapshot(self) -> dict[str, Any] | None:
        raw = self.data.get(self.add_prefix("loaded_values")) if self.is_bound else None
        if not raw:
            return None
        try:
            return signing.loads(raw, salt=LOADED_SALT)
        except signing.BadSignature:
            return None

    def display(self, name: str, value: Any) -> str:
        """A value of field `name` as the page shows it."""
        if value in (None, "", []):
            return EMPTY
        field = self.fields[name]
        if isinstance(field, forms.BooleanField):
            return "Yes" if value in (True, "true", "on", "True") else "No"
        if isinstance(field, forms.ModelChoiceField):
            if isinstance(value, models.Model):
                return str(value)
            try:
                found = field.queryset.filter(pk=value).first() if field.queryset is not None else None
            except (ValueError, ValidationError):
                found = None
            return str(found) if found is not None else str(value)
        if isinstance(field, forms.ChoiceField):
            # Assigning choices turns them into pairs; the stubs type the getter as any input it takes.
            return str(dict(cast(Iterable[tuple[Any, Any]], field.choices)).get(value, value))
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def changes_since_loaded(self, current: models.Model) -> list[Change]:
        """What differs between the stored object and what this form was loaded with.

        Without the loaded values (a hand-made post), compare with the values posted instead.
        """
        stored = type(self)(instance=current).snapshot()
        loaded = self.loaded_snapshot()
        posted = {name: _plain(self.cleaned_data.get(name)) for name in stored} if hasattr(self, "cleaned_data") else {}
        reference = loaded if loaded is not None else posted
        changes = []
        for name, theirs in stored.items():
            before = reference.get(name)
            if self._same(before, theirs):
                continue
            changes.append(
                Change(
                    label=str(self.fields[name].label or name),
                    before=self.display(name, before) if loaded is not None else "(not known)",
                    theirs=self.display(name, theirs),
                    yours=self.display(name, posted.get(name)),
                )
            )
        return changes

    @staticmethod
    def _same(a: Any, b: Any) -> bool:
        if a in (None, "") and b in (None, ""):
            return True
        return str(a) == str(b) if not isinstance(a, dict | list) else a == b


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    expires_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires after (days)",
        help_text="Empty: the token works until you revoke it.",
    )
