"""Admin writes go through the same services as the API and the pages, so they are validated,
versioned and audited alike; a refusal from a service shows as a form error, never as a 500."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect

from core.audit import Actor
from core.models import ApiToken, AuditEntry
from core.services import ModelServices, StaleVersion, Write
from core.tokens import token_revoke


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


class ServiceRefused(Exception):
    """A service refused the admin's save; the save is rolled back and the form shown again."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class ServiceModelForm(forms.ModelForm):
    """The admin's form; it shows the errors of a save the services refused (see ServiceAdmin)."""

    refusal: Exception | None = None

    def clean(self):
        cleaned = super().clean()
        if isinstance(self.refusal, ValidationError):
            form_errors(self, self.refusal)
        elif self.refusal is not None:
            self.add_error(None, str(self.refusal))
        return cleaned


class VersionedServiceModelForm(ServiceModelForm):
    """Carries the version being edited, so that a stale edit is refused."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["expected_version"].initial = self.instance.version


class ServiceAdmin(admin.ModelAdmin):
    """A ModelAdmin whose add, change and delete call the model's services (`services`).

    save_model and delete_model call them. A refusal raised while saving cannot be put on the form
    by Django's admin itself, so changeform_view, which runs in a transaction, lets the refused save
    roll back and shows the same post again, with the service's errors on the form: nothing is
    written. Versioned models carry their version in a hidden field, so a stale edit is refused.
    Adding, changing and deleting need the permissions the services name, and only the writes
    they offer are offered.
    """

    form = ServiceModelForm
    services: ModelServices | None = None
    refusal_attribute = "_ferry_admin_refusal"

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.form is ServiceModelForm and self._versioned():
            self.form = VersionedServiceModelForm

    def _versioned(self) -> bool:
        return any(field.name == "version" for field in self.model._meta.concrete_fields)

    def _services(self) -> ModelServices:
        # Without services no write is offered (see _may), so the admin never calls for one.
        if self.services is None:
            raise PermissionDenied(f"A {self.model._meta.verbose_name} cannot be changed here.")
        return self.services

    def _may(self, request, write: Write) -> bool:
        return (
            self.services is not None
            and self.services.offers(write)
            and request.user.has_perm(self.services.permission(write))
        )

    def has_add_permission(self, request):
        return self._may(request, "create")

    def has_change_permission(self, request, obj=None):
        return self._may(request, "update")

    def has_delete_permission(self, request, obj=None):
        return self._may(request, "delete")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory made this class for this request alone, from self.form.
        if issubclass(form, ServiceModelForm):
            form.refusal = getattr(request, self.refusal_attribute, None)
        return form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            setattr(request, self.refusal_attribute, refused.error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        """Store the form's values through the services; the admin then logs and shows `obj` as stored."""
        names = {field.name for field in self.model._meta.concrete_fields}
        actor = Actor.of(request.user)
        try:
            if change:
                stored = self.model._default_manager.get(pk=obj.pk)
                data = {name: form.cleaned_data[name] for name in form.changed_data if name in names}
                expected = form.cleaned_data.get("expected_version")
                saved = self._services().update(actor=actor, instance=stored, data=data, expected_version=expected)
            else:
                data = {name: form.cleaned_data[name] for name in form.fields if name in names}
                saved = self._services().create(actor=actor, data=data)
        except (ValidationError, StaleVersion, PermissionDenied) as error:
            raise ServiceRefused(error) from error
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        """No many-to-many fields or inlines: nothing else to store."""

    def delete_model(self, request, obj):
        self._services().delete(actor=Actor.of(request.user), instance=obj)

    def delete_queryset(self, request, queryset):
        refused = []
        for obj in queryset:
            try:
                self._services().delete(actor=Actor.of(request.user), instance=obj)
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


def service_action(service, *, on: str, description: str, done: str, permission: str = "change"):
    """An admin action that calls `service(actor=..., <on>=obj)` for each selected object."""

    @admin.action(description=description, permissions=[permission])
    def action(model_admin: ServiceAdmin, request, queryset) -> None:
        actor = Actor.of(request.user)
        model_admin.run_service(request, queryset, lambda obj: service(actor=actor, **{on: obj}), done=done)

    return action


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


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Every user's API tokens, for superusers: never a key (only its hash is stored, and not shown),
    no adding (users create their own on /tokens/), and revoking through the audited service."""

    list_display = ("name", "user", "prefix", "created", "expires", "last_used")
    list_filter = ("expires", "last_used")
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    fields = ("name", "user", "prefix", "created", "expires", "last_used")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def delete_model(self, request, obj):
        token_revoke(actor=Actor.of(request.user), token=obj)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            token_revoke(actor=Actor.of(request.user), token=token)
