"""The generic list, detail, edit and delete views the object pages are made of.

Views stay thin: they parse input with a form, call a service with the request's Actor, and turn
what the service says (ValidationError, StaleVersion, PermissionDenied) into messages on the page.
Reads need the model's view permission, writes its add/change/delete permission; the templates
hide what a user may not do, and these views refuse it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import wraps
from typing import Any, ClassVar, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import NoReverseMatch, reverse
from django.views import View
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from core.api.throttling import TokenCreateThrottle
from core.audit import Actor
from core.counting import EstimatedCountPaginator
from core.filtersets import AuditPageFilterSet
from core.forms import ApiTokenCreateForm, VersionedModelForm, apply_validation_error
from core.models import ApiToken, AuditEntry, VersionedModel
from core.selectors import AUDITED_PAGES, audit_model, entry_changes, object_history, related_names
from core.services import ModelServices, StaleVersion, Write
from core.tokens import NewToken, token_create, token_expiry, token_revoke, user_tokens


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it."""

    htmx: HtmxDetails


def _login_redirect_for_htmx(request: HtmxHttpRequest) -> HttpResponse:
    """An htmx fragment request after the session expired: send the whole page to the login form."""
    back = request.htmx.current_url_abs_path or request.get_full_path()
    return HttpResponseClientRedirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}")


def page_login_required(view):
    """login_required that also works for htmx requests, which must not swap the login page in."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.htmx and not request.user.is_authenticated:
            return _login_redirect_for_htmx(request)
        return login_required(view)(request, *args, **kwargs)

    return wrapper


def model_permission(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


class ModelPermissionMixin(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Anonymous users go to the login page; logged-in users without the permission get 403.

    A model's pages are named after it: the template "<app>/<name>_<page>.html" and the URL
    "<app>:<name>_<page>", where the name is `route` (the model's name unless set).
    """

    request: HtmxHttpRequest
    action: ClassVar[str] = "view"
    route: ClassVar[str | None] = None
    page: ClassVar[str]

    @property
    def model(self) -> type[models.Model]:
        """Set by each page class (`model = Cluster`), or given by its services (ServicesViewMixin)."""
        raise NotImplementedError

    def get_permission_required(self):
        return (model_permission(self.model, self.action),)

    @property
    def name(self) -> str:
        # Options.model_name is set when the model class is made; the stubs type it as before that.
        return self.route or cast(str, self.model._meta.model_name)

    def route_name(self, page: str) -> str:
        return f"{self.model._meta.app_label}:{self.name}_{page}"

    @property
    def template_name(self) -> str:
        return f"{self.model._meta.app_label}/{self.name}_{self.page}.html"

    def handle_no_permission(self):
        if self.request.htmx and not self.request.user.is_authenticated:
            return _login_redirect_for_htmx(self.request)
        return super().handle_no_permission()


# Above this many rows, an object filter is typed as an id instead of listed: a page must not
# send 20,000 VMs as options (links such as /migrations/?vm=<id> fill it in).
LISTED_CHOICES_MAX = 100


class IdsInput(forms.TextInput):
    """A text box for one or more ids (comma-separated), for filters over many objects."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        ids = [part.strip() for value in values if value for part in str(value).split(",") if part.strip()]
        return ids if self.attrs.get("data-multiple") else (ids[0] if ids else None)

    def format_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return super().format_value(value)


def filter_form_widgets(form: forms.Form) -> forms.Form:
    """Multiple-choice filters as checkbox lists, which read better than multi-selects; "Any" for no filter."""
    for field in form.fields.values():
        if (
            isinstance(field, forms.ModelChoiceField)
            and field.queryset is not None
            and field.queryset.count() > LISTED_CHOICES_MAX
        ):
            multiple = isinstance(field, forms.ModelMultipleChoiceField)
            field.widget = IdsInput(
                attrs={
                    "placeholder": f"{field.queryset.model._meta.verbose_name} id",
                    **({"data-multiple": "1"} if multiple else {}),
                }
            )
        elif isinstance(field, forms.ChoiceField) and isinstance(field.widget, forms.SelectMultiple):
            # Assigning choices turns them into pairs; the stubs type the getter as any input it takes.
            field.widget = forms.CheckboxSelectMultiple(choices=cast(Iterable[tuple[Any, Any]], field.choices))
        elif isinstance(field.widget, forms.NullBooleanSelect):
            field.widget.choices = [("unknown", "Any"), ("true", "Yes"), ("false", "No")]
        elif isinstance(field, forms.ModelChoiceField):
            field.empty_label = "Any"
            field.widget.choices = field.choices
    return form


# The page sizes a list page offers (?per_page=); anything else is the default.
PAGE_SIZES = (25, 50, 100, 250)
PAGE_SIZE_DEFAULT = 50
# Query parameters that choose a page rather than filter the list.
PAGING_PARAMETERS = ("page", "per_page")


def page_size(request: HttpRequest) -> int:
    raw = request.GET.get("per_page", "")
    return int(raw) if raw in {str(size) for size in PAGE_SIZES} else PAGE_SIZE_DEFAULT


class ObjectListView(ModelPermissionMixin, View):
    """A filtered, paginated table. With htmx, only the results are sent back.

    Pages are numbered (?page=) and sized (?per_page=, one of PAGE_SIZES); an unfiltered list of a
    large table is counted from PostgreSQL's estimate (core.counting), and says "about".
    """

    page = "list"
    queryset: ClassVar[models.QuerySet]
    filterset_class: ClassVar[type]
    filter_labels: ClassVar[dict[str, str]] = {}

    def get_queryset(self) -> models.QuerySet:
        queryset = self.queryset.all()
        # Aggregates drop Meta.ordering; pages need a stable order.
        return queryset if queryset.ordered else queryset.order_by(*(self.model._meta.ordering or ["pk"]))

    def get_context_data(self, page) -> dict[str, Any]:
        return {}

    def get(self, request: HtmxHttpRequest) -> HttpResponse:
        filterset = self.filterset_class(request.GET, queryset=self.get_queryset(), request=request)
        filter_form_widgets(filterset.form)
        filterset.form.order_fields(["q"])
        for name, label in self.filter_labels.items():
            if name in filterset.form.fields:
                filterset.form.fields[name].label = label
        per_page = page_size(request)
        page = EstimatedCountPaginator(filterset.qs, per_page).get_page(request.GET.get("page"))
        query = request.GET.copy()
        for name in PAGING_PARAMETERS:
            query.pop(name, None)
        context = {
            "filterset": filterset,
            "filter_form": filterset.form,
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "per_page": per_page,
            "page_sizes": PAGE_SIZES,
            "objects": page.object_list,
            "query": query.urlencode(),
            "filtered": any(
                value not in ("", "unknown")
                for key, value in request.GET.items()
                if key not in PAGING_PARAMETERS and key != "ordering"
            ),
            "model_opts": self.model._meta,
        }
        context |= self.get_context_data(page)
        template = self.template_name
        if request.htmx and request.htmx.target == "results":
            template += "#results"
        return render(request, template, context)


class ObjectDetailView(ModelPermissionMixin, View):
    """One object, as `object` and under its name (`cluster`), with its recent history."""

    page = "detail"
    queryset: ClassVar[models.QuerySet]

    def get_context_data(self, obj: models.Model) -> dict[str, Any]:
        return {}

    def get(self, request: HttpRequest, pk) -> HttpResponse:
        obj = get_object_or_404(self.queryset, pk=pk)
        context = {"object": obj, self.name: obj, "history": object_history(obj)}
        context |= self.get_context_data(obj)
        return render(request, self.template_name, context)


class ServicesViewMixin(ModelPermissionMixin):
    """A page that writes through its model's services, with the permission they name."""

    services: ModelServices | None = None  # by the page class, or as_view(services=...)

    def _services(self) -> ModelServices:
        if self.services is None:
            raise ImproperlyConfigured(f"{type(self).__name__} needs its model's services.")
        return self.services

    @property
    def write(self) -> Write:
        """The write this page makes (`write = "delete"`)."""
        raise NotImplementedError

    @property
    def model(self) -> type[models.Model]:
        return self._services().model

    @property
    def detail_url_name(self) -> str:
        return self.route_name("detail")

    @property
    def list_url_name(self) -> str:
        return self.route_name("list")

    def get_permission_required(self):
        return (self._services().permission(self.write),)

    def get_queryset(self) -> models.QuerySet:
        queryset = getattr(self, "queryset", None)
        return queryset.all() if queryset is not None else self.model._default_manager.all()


class ObjectEditView(ServicesViewMixin, View):
    """Add (no pk) or edit an object through its create/update service, refusing stale edits.

    An add form takes the related objects named in
    `prefill` from the query string (/hosts/add/?cluster=<id>) when they exist.
    """

    page = "form"
    form_class: ClassVar[type[VersionedModelForm]]
    prefill: ClassVar[tuple[str, ...]] = ()

    @property
    def write(self) -> Write:
        return "update" if "pk" in self.kwargs else "create"

    def get_object(self, pk) -> models.Model | None:
        return None if pk is None else get_object_or_404(self.get_queryset(), pk=pk)

    def get_initial(self) -> dict[str, Any]:
        initial = {}
        for name in self.prefill:
            value = self.request.GET.get(name, "")
            field = self.form_class.base_fields[name]
            if not isinstance(field, forms.ModelChoiceField) or field.queryset is None:
                continue
            try:
                if value and field.queryset.filter(pk=value).exists():
                    initial[name] = value
            except (ValidationError, ValueError):
                continue
        return initial

    def get_form(self, obj: models.Model | None, data=None) -> VersionedModelForm:
        return self.form_class(data, instance=obj, initial=self.get_initial() if obj is None else None)

    def render_form(self, form, obj, **extra) -> HttpResponse:
        context = {"form": form, "object": obj, "model_opts": self.model._meta, **extra}
        return render(self.request, self.template_name, context)

    def get(self, request: HttpRequest, pk=None) -> HttpResponse:
        obj = self.get_object(pk)
        return self.render_form(self.get_form(obj), obj)

    def post(self, request: HttpRequest, pk=None) -> HttpResponse:
        obj = self.get_object(pk)
        form = self.get_form(obj, request.POST)
        if not form.is_valid():
            form.check_the_rest()
            return self.render_form(form, obj)
        actor = Actor.of(request.user)
        verbose = self.model._meta.verbose_name
        try:
            if obj is None:
                saved = self._services().create(actor=actor, data=form.service_data())
            else:
                saved = self._services().update(
                    actor=actor,
                    instance=obj,
                    data=form.service_data(),
                    expected_version=form.cleaned_data.get("version"),
                )
        except StaleVersion as stale:
            if stale.current is None:
                messages.error(request, f"This {verbose} was deleted by someone else while you were editing it.")
                return redirect(self.list_url_name)
            return self.render_stale(form, stale.current)
        except ValidationError as error:
            apply_validation_error(form, error)
            return self.render_form(form, obj)
        messages.success(request, f"{'Created' if obj is None else 'Saved'} {verbose} {saved}.")
        return redirect(self.detail_url_name, pk=saved.pk)

    def render_stale(self, refused: VersionedModelForm, current: VersionedModel) -> HttpResponse:
        """Keep the user's values, move the form to the stored version, and list what changed."""
        changes = refused.changes_since_loaded(current)
        data = self.request.POST.copy()
        fresh = self.form_class(instance=current)
        data["version"] = str(current.version)
        data["loaded_values"] = fresh.initial["loaded_values"]
        form = self.get_form(current, data)
        return self.render_form(form, current, stale_changes=changes, stale_version=current.version)


class ObjectDeleteView(ServicesViewMixin, View):
    """GET asks for confirmation, or lists what keeps the object; POST deletes through the service."""

    write = "delete"
    template_name: ClassVar[str] = "core/object_delete.html"
    blockers_shown: ClassVar[int] = 10

    def blockers(self, obj: models.Model) -> list[str]:
        """The objects that keep this one from being deleted: those that refer to it with PROTECT."""
        found = []
        for relation in obj._meta.related_objects:
            if relation.on_delete is models.PROTECT:
                rows = relation.related_model._default_manager.filter(**{relation.field.name: obj})
                found += [f"{relation.related_model._meta.verbose_name} {row}" for row in rows[: self.blockers_shown]]
        return found

    def get_context_data(self, obj: models.Model) -> dict[str, Any]:
        return {"blockers": self.blockers(obj)}

    def get(self, request: HttpRequest, pk) -> HttpResponse:
        obj = get_object_or_404(self.get_queryset(), pk=pk)
        context = {
            "object": obj,
            "model_opts": self.model._meta,
            "cancel_url": reverse(self.detail_url_name, kwargs={"pk": obj.pk}),
        }
        return render(request, self.template_name, context | self.get_context_data(obj))

    def post(self, request: HttpRequest, pk) -> HttpResponse:
        obj = get_object_or_404(self.get_queryset(), pk=pk)
        verbose = self.model._meta.verbose_name
        version = request.POST.get("version", "")
        try:
            self._services().delete(
                actor=Actor.of(request.user), instance=obj, expected_version=int(version) if version.isdigit() else None
            )
        except StaleVersion:
            messages.error(request, f"This {verbose} changed since you asked to delete it; check it and try again.")
            return redirect(self.detail_url_name, pk=obj.pk)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(self.detail_url_name, pk=obj.pk)
        messages.success(request, f"Deleted {verbose} {obj}.")
        return redirect(self.list_url_name)


class AuditListView(ObjectListView):
    """The audit trail for everyone who may view it: filters by object type, who, action and time;
    each change field by field, with a link to the object."""

    model = AuditEntry
    queryset = AuditEntry.objects.all()
    filterset_class = AuditPageFilterSet
    template_name = "core/audit_list.html"

    def get_context_data(self, page) -> dict[str, Any]:
        rows = []
        related = related_names(list(page.object_list))
        for entry in page.object_list:
            model = audit_model(entry.object_type)
            url = None
            if entry.object_type in AUDITED_PAGES and entry.action != "delete":
                try:
                    url = reverse(AUDITED_PAGES[entry.object_type], args=[entry.object_id])
                except NoReverseMatch:
                    url = None
            rows.append(
                {
                    "entry": entry,
                    "type": model._meta.verbose_name if model else entry.object_type,
                    "url": url,
                    "changes": entry_changes(entry, model, related),
                }
            )
        return {"rows": rows}


class ApiTokenListView(LoginRequiredMixin, View):
    """Your own API tokens: the list (never a key), a form to create one, whose key is shown once
    on the page that answers the form, and a revoke button each."""

    template_name = "core/token_list.html"
    throttle_scope = "token_create"

    def render_page(self, request: HttpRequest, form: ApiTokenCreateForm, new: NewToken | None = None, status=200):
        context = {"tokens": user_tokens(user=request.user), "form": form, "new": new}
        response = render(request, self.template_name, context, status=status)
        if new is not None:
            response["Cache-Control"] = "no-store"  # the key must not stay in a cache
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_page(request, ApiTokenCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiTokenCreateForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form)
        # The throttle reads only the user, the address and the view's throttle_scope, which a page
        # has as well as an API view: the tokens page and the API share one count.
        if not TokenCreateThrottle().allow_request(request, self):  # type: ignore[arg-type]
            form.add_error(None, "You created too many tokens lately; try again later.")
            return self.render_page(request, form, status=429)
        try:
            new = token_create(
                actor=Actor.of(request.user),
                user=request.user,
                name=form.cleaned_data["name"],
                expires=token_expiry(expires_days=form.cleaned_data["expires_days"]),
            )
        except ValidationError as error:
            apply_validation_error(form, error)
            return self.render_page(request, form)
        return self.render_page(request, ApiTokenCreateForm(), new=new)


class ApiTokenRevokeView(LoginRequiredMixin, View):
    """GET asks for confirmation; POST revokes one of your own tokens (anyone else's is a 404)."""

    def get(self, request: HttpRequest, pk) -> HttpResponse:
        token = get_object_or_404(user_tokens(user=request.user), pk=pk)
        context = {
            "object": token,
            "model_opts": ApiToken._meta,
            "cancel_url": reverse("token_list"),
            "action_label": "Revoke",
        }
        return render(request, "core/object_delete.html", context)

    def post(self, request: HttpRequest, pk) -> HttpResponse:
        token = get_object_or_404(user_tokens(user=request.user), pk=pk)
        token_revoke(actor=Actor.of(request.user), token=token)
        messages.success(request, f"Revoked API token {token}: requests with its key are refused from now on.")
        return redirect("token_list")
