"""Pages for migrations: the Migrate form with its plan preview, the job list and a job's progress."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from clusters.api.serializers import ImpactQuerySerializer
from clusters.models import VM, Cluster
from core.audit import Actor
from core.forms import apply_validation_error
from core.views import ObjectListView, page_login_required
from migrations_app import services
from migrations_app.filtersets import MigrationJobFilterSet
from migrations_app.forms import BulkMigrateForm, MigrateForm
from migrations_app.impact import PROPOSABLE_FIELDS, cluster_impact
from migrations_app.models import ACTIVE_STATES, MigrationJob
from migrations_app.progress import chart, live_figures
from migrations_app.resolver import migration_limits
from migrations_app.selectors import (
    automatic_plan,
    dashboard_summary,
    destination_automatic,
    host_values,
    job_list,
    job_waiting,
    migration_plan,
    vm_for_planning,
)
from migrations_app.services import MigrationConflict

SHOWN_VMS = 200  # per group on the page; the API lists them all


def _planning_vm(pk) -> VM:
    try:
        return vm_for_planning(pk)
    except VM.DoesNotExist:
        raise Http404("No such VM.") from None


def _preview_context(vm: VM, form: MigrateForm) -> dict:
    destination = form.destination()
    plan = None
    unavailable = None
    if form.automatic():
        destination, reason = destination_automatic(vm)
        if destination is None:
            unavailable = reason
        else:
            plan = automatic_plan(vm=vm, destination=destination, reason=reason)
    elif destination is not None and destination.cluster_id == vm.host.cluster_id and destination.pk != vm.host_id:
        plan = migration_plan(vm=vm, destination=destination).to_dict()
    return {
        "vm": vm,
        "form": form,
        "destination": destination,
        "automatic": form.automatic(),
        "unavailable": unavailable,
        "plan": plan,
        # The limits the source's agent holds every migration to (shown with the plan).
        "show_limits": True,
        "limits": migration_limits(host_values(vm.host)),
    }


@require_http_methods(["GET", "POST"])
@page_login_required
@permission_required("migrations_app.add_migrationjob", raise_exception=True)
def vm_migrate(request, pk):
    vm = _planning_vm(pk)
    active = MigrationJob.objects.filter(vm=vm, state__in=ACTIVE_STATES).first()
    form = MigrateForm(request.POST if request.method == "POST" else None, vm=vm)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.migration_start(
                actor=Actor.of(request.user), vm=vm, destination=form.cleaned_data["destination_host"]
            )
        except MigrationConflict as conflict:
            active = MigrationJob.objects.filter(vm=vm, state__in=ACTIVE_STATES).first()
            link = reverse("migrations:job_detail", kwargs={"pk": active.pk}) if active else "/migrations/"
            messages.error(request, format_html('{} <a href="{}">See the running migration.</a>', conflict, link))
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"Migration of {vm} to {job.destination_host} is queued.")
            return redirect("migrations:job_detail", pk=job.pk)
    context = _preview_context(vm, form) | {"active_job": active}
    return render(request, "migrations_app/vm_migrate.html", context)


@require_POST
@page_login_required
@permission_required("migrations_app.add_migrationjob", raise_exception=True)
def vm_migrate_many(request):
    """The VM list's "Migrate selected": a migration for each VM ticked, each on its own, as
    POST /api/vms/migrate/ does; a message per VM says what became of it."""
    form = BulkMigrateForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("clusters:vm_list")
    outcomes = services.migrations_start_many(
        actor=Actor.of(request.user),
        vm_ids=form.cleaned_data["vms"],
        destination=form.cleaned_data["destination_host"],
    )
    for outcome in outcomes:
        name = outcome.vm_name or str(outcome.vm_id)
        if outcome.job is not None:
            link = reverse("migrations:job_detail", kwargs={"pk": outcome.job.pk})
            messages.success(
                request,
                format_html(
                    '{}: queued to {}. <a href="{}">See the migration.</a>', name, outcome.job.destination_host, link
                ),
            )
        else:
            reasons = " ".join(message for field in (outcome.reasons or {}).values() for message in field)
            messages.error(request, f"{name}: {reasons}")
    return redirect("clusters:vm_list")


@require_GET
@page_login_required
@permission_required("clusters.view_vm", raise_exception=True)
def vm_migration_plan(request, pk):
    """The plan preview for the destination chosen in the Migrate form (an htmx fragment)."""
    vm = _planning_vm(pk)
    form = MigrateForm(request.GET, vm=vm)
    return render(request, "migrations_app/vm_migrate.html#preview", _preview_context(vm, form))


class JobListView(ObjectListView):
    model = MigrationJob
    route = "job"
    queryset = job_list()
    filterset_class = MigrationJobFilterSet
    filter_labels = {"vm": "VM"}

    def get_context_data(self, page):
        return {"live": any(job.is_active for job in page.object_list)}


def _job(pk) -> MigrationJob:
    return get_object_or_404(job_list(), pk=pk)


def _job_context(job: MigrationJob) -> dict:
    return {"job": job, "waiting": job_waiting(job), "run": live_figures(job), "chart": chart(job.samples or [])}


@require_GET
@page_login_required
@permission_required("migrations_app.view_migrationjob", raise_exception=True)
def job_detail(request, pk):
    job = _job(pk)
    return render(request, "migrations_app/job_detail.html", _job_context(job))


@require_GET
@page_login_required
@permission_required("migrations_app.view_migrationjob", raise_exception=True)
def job_status(request, pk):
    """The job's live status card; htmx polls it every second and stops once the job has ended."""
    job = _job(pk)
    response = render(request, "migrations_app/job_detail.html#status", _job_context(job))
    if job.is_active:
        return response
    return HttpResponseStopPolling(response.content)


@require_POST
@page_login_required
@permission_required("migrations_app.change_migrationjob", raise_exception=True)
def job_cancel(request, pk):
    job = _job(pk)
    try:
        job = services.migration_cancel(actor=Actor.of(request.user), job=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if job.is_active:
            messages.success(request, "Cancel requested: the host is stopping the migration.")
        else:
            messages.success(request, "Migration cancelled.")
    return redirect("migrations:job_detail", pk=job.pk)


@require_GET
@page_login_required
@permission_required("clusters.view_cluster", raise_exception=True)
def cluster_impact_preview(request, pk):
    """What the cluster's VMs' next migrations would do with the values now in the cluster form
    (an htmx fragment; the form's other inputs are ignored)."""
    cluster = get_object_or_404(Cluster.objects.select_related("compatibility_version", "migration_policy"), pk=pk)
    query = ImpactQuerySerializer(data={k: v for k, v in request.GET.items() if k in PROPOSABLE_FIELDS})
    context: dict = {"cluster": cluster, "impact": None, "invalid": False}
    if query.is_valid():
        try:
            context["impact"] = cluster_impact(cluster=cluster, proposed=query.validated_data)
        except ValidationError:
            context["invalid"] = True
    else:
        context["invalid"] = True
    if context["impact"]:
        names = dict(VM.objects.filter(host__cluster=cluster).values_list("pk", "name"))
        for group in context["impact"]["groups"]:
            group["members"] = [(vm_id, names.get(uuid.UUID(vm_id), vm_id)) for vm_id in group["vms"][:SHOWN_VMS]]
            group["more"] = max(0, group["count"] - SHOWN_VMS)
    return render(request, "migrations_app/_impact.html", context)


@page_login_required
def dashboard(request):
    return render(request, "core/dashboard.html", dashboard_summary())
