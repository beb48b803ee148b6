"""Pages for clusters, hosts and VMs. Thin: forms parse, services write, templates show."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError

from clusters import services
from clusters.filtersets import ClusterFilterSet, HostFilterSet, VMFilterSet
from clusters.forms import ClusterForm, HostForm, VMForm
from clusters.models import VM, Cluster, Host, HostStatus
from core.audit import Actor
from core.services import StaleVersion
from core.views import ObjectDeleteView, ObjectDetailView, ObjectEditView, ObjectListView, page_login_required
from migrations_app.models import ACTIVE_STATES, MigrationJob

logger = logging.getLogger(__name__)
RECENT_JOBS = 10


def _existing_pk(model, value: str) -> str | None:
    """A pk from the query string if it names a row (for pre-filled add forms), else None."""
    try:
        return value if value and model.objects.filter(pk=value).exists() else None
    except (ValidationError, ValueError):
        return None


def _jobs():
    return MigrationJob.objects.select_related("vm", "source_host", "destination_host").order_by("-created_at")


# Clusters


class ClusterListView(ObjectListView):
    model = Cluster
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy").annotate(
        host_count=Count("hosts", distinct=True), vm_count=Count("hosts__vms", distinct=True)
    )
    filterset_class = ClusterFilterSet
    template_name = "clusters/cluster_list.html"
    filter_labels = {
        "parallel_migrations_policy": "Parallel migrations",
        "migration_encrypted": "Encryption",
        "migration_bandwidth": "Bandwidth",
    }


class ClusterDetailView(ObjectDetailView):
    model = Cluster
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy")
    template_name = "clusters/cluster_detail.html"
    context_object_name = "cluster"

    def get_context_data(self, obj):
        return {
            "hosts": obj.hosts.annotate(vm_count=Count("vms")).order_by("name"),
            "vms": VM.objects.filter(host__cluster=obj).select_related("host", "migration_policy"),
            "jobs": _jobs().filter(Q(source_host__cluster=obj) | Q(vm__host__cluster=obj)).distinct()[:RECENT_JOBS],
            "notes": ClusterForm(instance=obj).notes(),
        }


class ClusterEditView(ObjectEditView):
    model = Cluster
    queryset = Cluster.objects.select_related("compatibility_version", "migration_policy")
    form_class = ClusterForm
    template_name = "clusters/cluster_form.html"
    detail_url_name = "clusters:cluster_detail"
    list_url_name = "clusters:cluster_list"

    def create(self, *, actor, data):
        return services.cluster_create(actor=actor, data=data)

    def update(self, *, actor, obj, data, expected_version):
        return services.cluster_update(actor=actor, cluster=obj, data=data, expected_version=expected_version)


class ClusterDeleteView(ObjectDeleteView):
    model = Cluster
    queryset = Cluster.objects.all()
    detail_url_name = "clusters:cluster_detail"
    list_url_name = "clusters:cluster_list"

    def delete(self, *, actor, obj, expected_version):
        services.cluster_delete(actor=actor, cluster=obj, expected_version=expected_version)

    def get_context_data(self, obj):
        return {"blockers": [f"host {host}" for host in obj.hosts.all()[:10]]}


@require_GET
@page_login_required
@permission_required("clusters.view_cluster", raise_exception=True)
def cluster_form_refresh(request, pk=None):
    """The parts of the cluster form that follow the chosen options: the policy offer, the
    parallel choices and the notes. htmx swaps them in place when any input changes."""
    cluster = get_object_or_404(Cluster, pk=pk) if pk is not None else None
    form = ClusterForm(request.GET, instance=cluster)
    form.adjust_to_level()
    return render(request, "clusters/cluster_form.html#refresh", {"form": form, "object": cluster})


# Hosts


class HostListView(ObjectListView):
    model = Host
    queryset = Host.objects.select_related("cluster").annotate(vm_count=Count("vms"))
    filterset_class = HostFilterSet
    template_name = "clusters/host_list.html"


class HostDetailView(ObjectDetailView):
    model = Host
    queryset = Host.objects.select_related("cluster__compatibility_version")
    template_name = "clusters/host_detail.html"
    context_object_name = "host"

    def get_context_data(self, obj):
        return {
            "vms": obj.vms.select_related("migration_policy"),
            "jobs": _jobs().filter(Q(source_host=obj) | Q(destination_host=obj))[:RECENT_JOBS],
        }


class HostEditView(ObjectEditView):
    model = Host
    queryset = Host.objects.select_related("cluster")
    form_class = HostForm
    template_name = "clusters/host_form.html"
    detail_url_name = "clusters:host_detail"
    list_url_name = "clusters:host_list"

    def get_initial(self):
        cluster = _existing_pk(Cluster, self.request.GET.get("cluster", ""))
        return {"cluster": cluster} if cluster else {}

    def create(self, *, actor, data):
        return services.host_create(actor=actor, data=data)

    def update(self, *, actor, obj, data, expected_version):
        return services.host_update(actor=actor, host=obj, data=data, expected_version=expected_version)


class HostDeleteView(ObjectDeleteView):
    model = Host
    queryset = Host.objects.all()
    detail_url_name = "clusters:host_detail"
    list_url_name = "clusters:host_list"

    def delete(self, *, actor, obj, expected_version):
        services.host_delete(actor=actor, host=obj, expected_version=expected_version)

    def get_context_data(self, obj):
        return {"blockers": [f"VM {vm}" for vm in obj.vms.all()[:10]]}


def _host_action(request, pk, change, done: str):
    host = get_object_or_404(Host, pk=pk)
    try:
        change(actor=Actor.of(request.user), host=host)
    except (ValidationError, StaleVersion) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
    else:
        messages.success(request, done.format(host=host))
    return redirect("clusters:host_detail", pk=host.pk)


@require_POST
@page_login_required
@permission_required("clusters.operate_host", raise_exception=True)
def host_maintenance(request, pk):
    return _host_action(request, pk, services.host_set_maintenance, "Host {host} is in maintenance.")


@require_POST
@page_login_required
@permission_required("clusters.operate_host", raise_exception=True)
def host_activate(request, pk):
    return _host_action(request, pk, services.host_activate, "Host {host} is up.")


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


# VMs


class VMListView(ObjectListView):
    model = VM
    # The table shows the cluster's policy for VMs that inherit it: join it too (no query per row).
    queryset = VM.objects.select_related("host__cluster__migration_policy", "migration_policy")
    filterset_class = VMFilterSet
    template_name = "clusters/vm_list.html"
    filter_labels = {"cluster": "Cluster"}


class VMDetailView(ObjectDetailView):
    model = VM
    queryset = VM.objects.select_related("host__cluster__migration_policy", "migration_policy")
    template_name = "clusters/vm_detail.html"
    context_object_name = "vm"

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
    model = VM
    queryset = VM.objects.select_related("host__cluster")
    form_class = VMForm
    template_name = "clusters/vm_form.html"
    detail_url_name = "clusters:vm_detail"
    list_url_name = "clusters:vm_list"

    def get_initial(self):
        host = _existing_pk(Host, self.request.GET.get("host", ""))
        return {"host": host} if host else {}

    def create(self, *, actor, data):
        return services.vm_create(actor=actor, data=data)

    def update(self, *, actor, obj, data, expected_version):
        return services.vm_update(actor=actor, vm=obj, data=data, expected_version=expected_version)


class VMDeleteView(ObjectDeleteView):
    model = VM
    queryset = VM.objects.all()
    detail_url_name = "clusters:vm_detail"
    list_url_name = "clusters:vm_list"

    def delete(self, *, actor, obj, expected_version):
        services.vm_delete(actor=actor, vm=obj, expected_version=expected_version)
