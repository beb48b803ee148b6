"""The Migrate form: a VM and the host it should move to."""

from __future__ import annotations

from django import forms

from clusters.models import VM, Host, HostStatus


class MigrateForm(forms.Form):
    """Lists the other hosts of the VM's cluster; the service decides whether a destination is valid."""

    destination_host = forms.ModelChoiceField(queryset=Host.objects.all(), label="Destination host")

    def __init__(self, *args, vm: VM, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm
        self.candidates = list(
            Host.objects.filter(cluster_id=vm.host.cluster_id).exclude(pk=vm.host_id).order_by("name")
        )
        field = self.fields["destination_host"]
        field.widget.choices = [("", "Choose a host…")] + [
            (str(host.pk), f"{host.name} ({host.get_status_display()}, {host.address})") for host in self.candidates
        ]
        if not self.is_bound:
            first_up = next((host for host in self.candidates if host.status == HostStatus.UP), None)
            if first_up is not None:
                self.initial.setdefault("destination_host", str(first_up.pk))

    def destination(self) -> Host | None:
        """The chosen host, before validation (for the preview); None when there is none."""
        raw = self.data.get("destination_host") if self.is_bound else self.initial.get("destination_host")
        if not raw:
            return None
        try:
            return Host.objects.select_related("cluster").filter(pk=raw).first()
        except (ValueError, forms.ValidationError):
            return None
