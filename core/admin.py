"""Admin writes go through the same services as the API and the pages, so they are validated,
versioned and audited alike; a refusal from a service shows as a form error, never as a 500."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpResponseRedirect

from core.audit import Actor
from core.models import AuditEntry
from core.services import StaleVersion


def form_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form when it has no such field)."""
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, messages_)
    else:
        form.add_error(None, error.messages)


def refusal_message(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


class ServiceModelForm(forms.ModelForm):
    """Runs the admin's service call once the model is valid, so a refusal becomes a form error."""

    model_admin: ServiceAdmin | None = None
    request = None
    change = False

    def _post_clean(self):
        super()._post_clean()
        if not self._errors and self.model_admin is not None:
            self.model_admin._save_in_form(self.request, self, self.change)


class VersionedServiceModelForm(ServiceModelForm):
    """Carries the version being edited, so that a stale edit is refused."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["expected_version"].initial = self.instance.version


class ServiceAdmin(admin.ModelAdmin):
    """A ModelAdmin whose add, change and delete call the app's services.

    The service runs while the form is validated (inside the admin's transaction), so a refusal
    becomes a form error on the field it names; save_model then only has the stored object to hand
    back. Versioned models carry their version in a hidden field, so a stale edit is refused.
    """

    form = ServiceModelForm

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.form is ServiceModelForm and self._versioned():
            self.form = VersionedServiceModelForm

    def service_create(self, *, actor: Actor, data: dict[str, Any]) -> models.Model:
        raise NotImplementedError

    def service_update(
        self, *, actor: Actor, obj: models.Model, data: dict[str, Any], expected_version: int | None
    ) -> models.Model:
        raise NotImplementedError

    def service_delete(self, *, actor: Actor, obj: models.Model) -> None:
        raise NotImplementedError

    def _versioned(self) -> bool:
        return any(field.name == "version" for field in self.model._meta.concrete_fields)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory made this class for this request alone.
        form.model_admin, form.request, form.change = self, request, change
        return form

    def _save_in_form(self, request, form, change: bool) -> None:
        names = {field.name for field in self.model._meta.concrete_fields}
        actor = Actor.of(request.user)
        try:
            if change:
                stored = self.model._default_manager.get(pk=form.instance.pk)
                data = {name: form.cleaned_data[name] for name in form.changed_data if name in names}
                expected = form.cleaned_data.get("expected_version")
                form.instance = self.service_update(actor=actor, obj=stored, data=data, expected_version=expected)
            else:
                data = {name: form.cleaned_data[name] for name in form.fields if name in names}
                form.instance = self.service_create(actor=actor, data=data)
        except ValidationError as error:
            form_errors(form, error)
        except (StaleVersion, PermissionDenied) as error:
            form.add_error(None, str(error))

    def save_model(self, request, obj, form, change):
        """The service stored the object while the form was validated."""

    def save_related(self, request, form, formsets, change):
        """No many-to-many fields or inlines: nothing else to store."""

    def delete_model(self, request, obj):
        self.service_delete(actor=Actor.of(request.user), obj=obj)

    def delete_queryset(self, request, queryset):
        refused = []
        for obj in queryset:
            try:
                self.service_delete(actor=Actor.of(request.user), obj=obj)
            except (ValidationError, StaleVersion, PermissionDenied) as error:
                refused.append(f"{obj}: {refusal_message(error)}")
        if refused:
            self.message_user(request, "Not deleted: " + " ".join(refused), messages.ERROR)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ValidationError, StaleVersion) as error:
            self.message_user(request, refusal_message(error), messages.ERROR)
            return HttpResponseRedirect(request.path.removesuffix("delete/") + "change/")

    def run_service(self, request, queryset, call, *, done: str) -> None:
        """An admin action: `call(obj)` for each selected object, each in its own transaction."""
        count, refused = 0, []
        for obj in queryset:
            try:
                with transaction.atomic():
                    call(obj)
                count += 1
            except (ValidationError, StaleVersion, PermissionDenied) as error:
                refused.append(f"{obj}: {refusal_message(error)}")
        if count:
            self.message_user(request, f"{done}: {count}.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Refused: " + " ".join(refused), messages.ERROR)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("actor", "object_repr", "object_id", "request_id")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor",
        "user",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "before",
        "after",
        "request_id",
    )
