"""The Migrate form: a VM and the host it should move to."""

from __future__ import annotations

from django import forms

from clusters.models import VM, Host


class MigrateForm(forms.Form):
    """Lists the other hosts of the VM's cluster after "Select automatically" (the empty value:
    Ferry chooses, migrations_app.selectors.destination_search); the service decides whether a
    destination is valid."""

    AUTOMATIC_LABEL = "Select automatically (Ferry chooses)"

    destination_host = forms.ModelChoiceField(
        queryset=Host.objects.all(), required=False, label="Destination host", empty_label=AUTOMATIC_LABEL
    )

    def __init__(self, *args, vm: VM, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm
        self.candidates = list(
            Host.objects.filter(cluster_id=vm.host.cluster_id).exclude(pk=vm.host_id).order_by("name")
        )
        field = self.fields["destination_host"]
        field.widget.choices = [("", self.AUTOMATIC_LABEL)] + [
            (str(host.pk), f"{host.name} ({host.get_status_display()}, {host.address})") for host in self.candidates
        ]

    def destination(self) -> Host | None:
        """The chosen host, before validation (for the preview); None: Ferry chooses (or no such host)."""
        raw = self.data.get("destination_host") if self.is_bound else self.initial.get("destination_host")
        if not raw:
            return None
        try:
            return Host.objects.select_related("cluster").filter(pk=raw).first()
        except (ValueError, forms.ValidationError):
            return None

    def automatic(self) -> bool:
        """Ferry is to choose the destination (the first choice, the default)."""
        raw = self.data.get("destination_host") if self.is_bound else self.initial.get("destination_host")
        return not raw
