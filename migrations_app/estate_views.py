"""Pages for clusters, hosts and VMs (URL namespace "clusters"). Thin: forms parse, services write,
templates show. They live here, above clusters, because they show and start migrations: a host's
evacuation, a VM's jobs, the notes the resolver derives for a cluster form."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError

from clusters import services
from clusters.filtersets import ClusterFilterSet, HostFilterSet, VMFilterSet
from clusters.forms import ClusterForm, HostForm, VMForm
from clusters.models import VM, Cluster, Host, HostStatus
from clusters.services import CLUSTER_SERVICES, HOST_SERVICES, VM_SERVICES
from core.audit import Actor
from core.counting import subquery_count
from core.services import StaleVersion
from core.views import ObjectDetailView, ObjectEditView, ObjectListView, page_login_required
from migrations_app.evacuation import RUNNING_VM_STATES, evacuation_progress
from migrations_app.models import ACTIVE_STATES, MigrationJob
from migrations_app.notes import form_notes
from migrations_app.services import agent_token_issue

logger = logging.getLogger(__name__)
RECENT_JOBS = 10


def _jobs():
    return MigrationJob.objects.select_related("vm", "source_host", "destination_host").order_by("-created_at")


# Clusters


class ClusterListView(ObjectListView):
    model = Cluster
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy").annotate(
        host_count=subquery_count(Host.objects.all(), "cluster"),
        vm_count=subquery_count(VM.objects.all(), "host__cluster"),
    )
    filterset_class = ClusterFilterSet
    filter_labels = {
        "parallel_migrations_policy": "Parallel migrations",
        "migration_encrypted": "Encryption",
        "migration_bandwidth": "Bandwidth",
    }


class ClusterDetailView(ObjectDetailView):
    model = Cluster
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy")

    def get_context_data(self, obj):
        return {
            "hosts": obj.hosts.annotate(vm_count=Count("vms")).order_by("name"),
            "vms": VM.objects.filter(host__cluster=obj).select_related("host", "migration_policy"),
            "jobs": _jobs().filter(Q(source_host__cluster=obj) | Q(vm__host__cluster=obj)).distinct()[:RECENT_JOBS],
            "notes": form_notes(ClusterForm(instance=obj)),
        }


class ClusterEditView(ObjectEditView):
    services = CLUSTER_SERVICES
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy")
    form_class = ClusterForm

    def render_form(self, form, obj, **extra):
        return super().render_form(form, obj, notes=form_notes(form), **extra)


@require_GET
@page_login_required
@permission_required("clusters.view_cluster", raise_exception=True)
def cluster_form_refresh(request, pk=None):
    """The parts of the cluster form that follow the chosen options: the policy offer, the
    parallel choices and the notes. htmx swaps them in place when any input changes."""
    cluster = get_object_or_404(Cluster, pk=pk) if pk is not None else None
    form = ClusterForm(request.GET, instance=cluster)
    form.adjust_to_level()
    context = {"form": form, "object": cluster, "notes": form_notes(form)}
    return render(request, "clusters/cluster_form.html#refresh", context)


# Hosts


class HostListView(ObjectListView):
    model = Host
    queryset = Host.objects.select_related("cluster").annotate(vm_count=subquery_count(VM.objects.all(), "host"))
    filterset_class = HostFilterSet


class HostDetailView(ObjectDetailView):
    model = Host
    queryset = Host.objects.select_related("cluster__compatibility_version")

    def get_context_data(self, obj):
        return {
            "vms": obj.vms.select_related("migration_policy"),
            "jobs": _jobs().filter(Q(source_host=obj) | Q(destination_host=obj))[:RECENT_JOBS],
            "evacuation": evacuation_progress(obj),
        }


class HostEditView(ObjectEditView):
    services = HOST_SERVICES
    queryset = Host.objects.select_related("cluster")
    form_class = HostForm
    prefill = ("cluster",)


def _host_action(request, pk, change, done: str):
    host = get_object_or_404(Host, pk=pk)
    try:
        change(actor=Actor.of(request.user), host=host)
    except (ValidationError, StaleVersion) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
    else:
        messages.success(request, done.format(host=host))
    return redirect("clusters:host_detail", pk=host.pk)


@page_login_required
@permission_required("clusters.operate_host", raise_exception=True)
def host_maintenance(request, pk):
    """GET: what maintenance will move (how many VMs, how much memory), to confirm; POST: start it."""
    host = get_object_or_404(Host, pk=pk)
    if request.method == "POST":
        try:
            host = services.host_set_maintenance(actor=Actor.of(request.user), host=host)
        except (ValidationError, StaleVersion) as error:
            messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
        else:
            if host.status == HostStatus.MAINTENANCE:
                messages.success(request, f"Host {host} is in maintenance.")
            else:
                messages.success(request, f"Host {host} is preparing for maintenance: its VMs are moved first.")
        return redirect("clusters:host_detail", pk=host.pk)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    running = host.vms.filter(status__in=RUNNING_VM_STATES)
    return render(
        request,
        "clusters/host_maintenance.html",
        {
            "host": host,
            "vm_count": running.count(),
            "memory_mib": running.aggregate(total=Sum("memory_mib"))["total"] or 0,
        },
    )


@require_POST
@page_login_required
@permission_required("clusters.operate_host", raise_exception=True)
def host_activate(request, pk):
    return _host_action(
        request, pk, services.host_activate, "Host {host} is activating: it is up once its agent reports."
    )


@require_POST
@page_login_required
@permission_required("clusters.operate_host", raise_exception=True)
def host_refresh(request, pk):
    """Ask the host's agent to report its capabilities; the report arrives by itself."""
    host = get_object_or_404(Host, pk=pk)
    try:
        services.host_request_refresh(actor=Actor.of(request.user), host=host)
    except OperationalError:
        logger.exception("could not enqueue a capabilities refresh for %s", host)
        messages.error(request, "The task queue cannot be reached; try again later.")
    else:
        messages.success(request, f"Asked {host} to report its capabilities; this page shows them once it does.")
    return redirect("clusters:host_detail", pk=host.pk)


@require_POST
@page_login_required
@permission_required("clusters.change_host", raise_exception=True)
def host_agent_token(request, pk):
    """A new agent token for the host, shown on this answer once (never stored, never redirected to)."""
    host = get_object_or_404(Host, pk=pk)
    token, key = agent_token_issue(actor=Actor.of(request.user), host=host)
    response = render(request, "clusters/host_agent_token.html", {"host": host, "token": token, "key": key})
    response["Cache-Control"] = "no-store"
    return response


# VMs


class VMListView(ObjectListView):
    model = VM
    # The table shows the cluster's policy for VMs that inherit it: join it too (no query per row).
    queryset = VM.objects.select_related("host__cluster__migration_policy", "migration_policy")
    filterset_class = VMFilterSet
    filter_labels = {"cluster": "Cluster"}

    def get_context_data(self, page):
        if not self.request.user.has_perm("migrations_app.add_migrationjob"):
            return {}
        # A destination must be in the VM's cluster: offer the hosts of the clusters on this page,
        # not every host of the estate (20,000 options on every page).
        clusters = {vm.host.cluster_id for vm in page.object_list}
        hosts = (
            Host.objects.filter(status=HostStatus.UP, cluster__in=clusters)
            .select_related("cluster")
            .order_by("cluster__name", "name")
        )
        return {"bulk_destinations": hosts}


class VMDetailView(ObjectDetailView):
    model = VM
    queryset = VM.objects.select_related("host__cluster__migration_policy", "migration_policy")

    def get_context_data(self, obj):
        jobs = _jobs().filter(vm=obj)
        return {
            "jobs": jobs[:RECENT_JOBS],
            "active_job": jobs.filter(state__in=ACTIVE_STATES).first(),
            "can_migrate_from_here": obj.host.cluster.hosts.exclude(pk=obj.host_id)
            .filter(status=HostStatus.UP)
            .exists(),
        }


class VMEditView(ObjectEditView):
    services = VM_SERVICES
    queryset = VM.objects.select_related("host__cluster")
    form_class = VMForm
    prefill = ("host",)
