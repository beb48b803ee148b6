"""The Migrate form: a VM and the host it should move to."""

from __future__ import annotations

import uuid
from typing import cast

from django import forms

from clusters.models import VM, Host
from migrations_app.services import BULK_MIGRATE_MAX


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


class BulkMigrateForm(forms.Form):
    """The VM list's "Migrate selected": the VMs ticked, and one host for all or none (Ferry chooses
    for each); migrations_app.services.migrations_start_many decides for each VM."""

    vms = forms.TypedMultipleChoiceField(
        coerce=uuid.UUID,
        error_messages={"required": "Select the VMs to migrate.", "invalid_choice": "An unknown VM was selected."},
    )
    destination_host = forms.ModelChoiceField(
        queryset=Host.objects.select_related("cluster"),
        required=False,
        error_messages={"invalid_choice": "The destination host does not exist."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any well-formed id: a VM that does not exist is answered per VM, not for the whole form.
        raw = self.data.getlist("vms") if hasattr(self.data, "getlist") else []
        field = cast(forms.TypedMultipleChoiceField, self.fields["vms"])
        field.choices = [(value, value) for value in raw if _is_uuid(value)][:BULK_MIGRATE_MAX]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True
