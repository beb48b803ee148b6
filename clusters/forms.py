"""Forms of the cluster, host and VM pages. Input names are the model's field names."""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings

from clusters.models import VM, Bandwidth, Cluster, ClusterLevel, ErrorHandling, Host, ParallelPolicy
from core.choices import TriState
from core.forms import VersionedModelForm
from policies.models import MINIMAL_DOWNTIME_ID, MigrationPolicy
from policies.selectors import policies_offered_at


def _tri_choices(default: bool, what: str) -> list[tuple[str, str]]:
    return [
        (TriState.INHERIT, f"Inherit (global default: {'on' if default else 'off'})"),
        (TriState.TRUE, f"On: {what}"),
        (TriState.FALSE, "Off"),
    ]


class ClusterForm(VersionedModelForm):
    """oVirt's cluster dialog, migration tab: the policy offer follows the compatibility version.

    The policy field accepts any policy, so that the model (through the service) is the one that
    refuses a policy the version does not offer; only the offered ones are listed.
    """

    class Meta:
        model = Cluster
        fields = [
            "name",
            "description",
            "compatibility_version",
            "migration_policy",
            "migration_bandwidth",
            "migration_bandwidth_custom_mbps",
            "migration_auto_converge",
            "migration_compressed",
            "migration_encrypted",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "error_handling",
        ]
        labels = {
            "compatibility_version": "Compatibility version",
            "migration_policy": "Migration policy",
            "migration_bandwidth": "Bandwidth",
            "migration_bandwidth_custom_mbps": "Custom bandwidth (Mbit/s)",
            "migration_auto_converge": "Auto-converge migrations",
            "migration_compressed": "Migration compression",
            "migration_encrypted": "Migration encryption",
            "parallel_migrations_policy": "Parallel migrations",
            "custom_parallel_migrations": "Parallel connections",
            "error_handling": "When a host fails",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "error_handling": forms.RadioSelect,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.typed_field("migration_policy", forms.ModelChoiceField).queryset = MigrationPolicy.objects.all()
        self.typed_field("migration_auto_converge", forms.ChoiceField).choices = _tri_choices(
            settings.FERRY_DEFAULT_AUTO_CONVERGE, "converge by throttling the guest's CPUs"
        )
        self.typed_field("migration_compressed", forms.ChoiceField).choices = _tri_choices(
            settings.FERRY_DEFAULT_COMPRESSED, "compress migration data"
        )
        self.typed_field("migration_encrypted", forms.ChoiceField).choices = _tri_choices(
            settings.FERRY_DEFAULT_ENCRYPTED, "migrate over TLS"
        )
        self.typed_field("error_handling", forms.ChoiceField).choices = ErrorHandling.choices
        self.fields["custom_parallel_migrations"].widget.attrs.update(min=2, max=255)
        self.fields["migration_bandwidth_custom_mbps"].widget.attrs.update(min=1)
        # What is stored, before any edit: a cluster may keep an option its version no longer offers.
        self.stored = (
            {
                "level": self.instance.compatibility_version_id,
                "policy": self.instance.migration_policy_id,
                "parallel": self.instance.parallel_migrations_policy,
            }
            if self.instance.pk and not self.instance._state.adding
            else None
        )
        self.adjustments: dict[str, str] = {}
        self._restrict_to_level()

    def value(self, name: str) -> Any:
        """The current raw value of a field: posted when bound, else the initial one."""
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        value = self.get_initial_for_field(self.fields[name], name)
        return getattr(value, "pk", value)

    @cached_property
    def level(self) -> ClusterLevel:
        level = ClusterLevel.objects.filter(pk=self.value("compatibility_version") or "").first()
        return level or ClusterLevel.objects.get(pk=Cluster._meta.get_field("compatibility_version").default)

    def _keeps(self, what: str, value: Any) -> bool:
        """The stored value may stay if the version is the stored one (the model allows that)."""
        return (
            self.stored is not None
            and str(self.stored["level"]) == str(self.level.pk)
            and str(self.stored[what]) == str(value)
        )

    def _restrict_to_level(self) -> None:
        level = self.level
        offered = policies_offered_at(level=level.level, parallel_supported=level.parallel_migrations_supported)
        self.offered_policies = offered
        choices = [(str(policy.pk), policy.name) for policy in offered]
        stored_policy = self.stored["policy"] if self.stored is not None else None
        if (
            stored_policy is not None
            and self._keeps("policy", stored_policy)
            and all(str(stored_policy) != pk for pk, _ in choices)
        ):
            kept = MigrationPolicy.objects.get(pk=stored_policy)
            choices.append((str(kept.pk), f"{kept.name} (kept; not offered at {level.level})"))
        self.fields["migration_policy"].widget.choices = choices

        parallel = list(ParallelPolicy.choices)
        if not level.parallel_migrations_supported:
            parallel = [
                (value, label)
                for value, label in parallel
                if value == ParallelPolicy.DISABLED or (self._keeps("parallel", value))
            ]
        self.fields["parallel_migrations_policy"].widget.choices = parallel

    def adjust_to_level(self) -> None:
        """For the in-place refresh: move choices the selected version does not offer to ones it does."""
        level = self.level
        data = self.data.copy()
        policy_pk = str(self.value("migration_policy") or "")
        listed = {pk for pk, _ in self.fields["migration_policy"].widget.choices}
        if policy_pk not in listed:
            fallback = next((p for p in self.offered_policies if p.pk == MINIMAL_DOWNTIME_ID), self.offered_policies[0])
            old = MigrationPolicy.objects.filter(pk=policy_pk).first() if _is_uuid(policy_pk) else None
            if old is not None:
                self.adjustments["migration_policy"] = (
                    f"{old.name} is not offered at compatibility version {level.level}: "
                    f"the policy is now {fallback.name}."
                )
            data[self.add_prefix("migration_policy")] = str(fallback.pk)
        parallel = self.value("parallel_migrations_policy")
        if parallel not in {value for value, _ in self.fields["parallel_migrations_policy"].widget.choices}:
            if parallel in ParallelPolicy.values:
                self.adjustments["parallel_migrations_policy"] = (
                    f"Compatibility version {level.level} does not support parallel migrations: they are now Disabled."
                )
            data[self.add_prefix("parallel_migrations_policy")] = ParallelPolicy.DISABLED
        self.data = data

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        # Values that only apply to a "custom" choice are dropped otherwise, with their errors.
        if cleaned.get("migration_bandwidth") != Bandwidth.CUSTOM:
            cleaned["migration_bandwidth_custom_mbps"] = None
            self.errors.pop("migration_bandwidth_custom_mbps", None)
        if cleaned.get("parallel_migrations_policy") != ParallelPolicy.CUSTOM:
            cleaned["custom_parallel_migrations"] = None
            self.errors.pop("custom_parallel_migrations", None)
        return cleaned

    def selected_policy(self) -> MigrationPolicy | None:
        """The policy the select shows: the chosen one if listed, else the first listed (as a browser does)."""
        value = str(self.value("migration_policy") or "")
        listed = [pk for pk, _ in self.fields["migration_policy"].widget.choices]
        if value not in listed:
            value = listed[0] if listed else ""
        return MigrationPolicy.objects.filter(pk=value).first() if _is_uuid(value) else None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def form_choice(value: Any, choices, default: str) -> str:
    return value if value in choices.values else default


def form_positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class HostForm(VersionedModelForm):
    class Meta:
        model = Host
        fields = ["name", "cluster", "address", "libvirt_uri", "peer_uri"]
        labels = {
            "address": "Migration address",
            "libvirt_uri": "libvirt URI",
            "peer_uri": "Peer URI",
        }


class VMForm(VersionedModelForm):
    class Meta:
        model = VM
        fields = [
            "name",
            "uuid",
            "host",
            "memory_mib",
            "vcpus",
            "status",
            "migration_policy",
            "parallel_migrations_policy",
            "custom_parallel_migrations",
            "migration_encrypted",
            "highly_available",
            "priority",
        ]
        labels = {
            "uuid": "Domain UUID",
            "memory_mib": "Memory (MiB)",
            "vcpus": "vCPUs",
            "migration_policy": "Migration policy",
            "parallel_migrations_policy": "Parallel migrations",
            "custom_parallel_migrations": "Parallel connections",
            "migration_encrypted": "Migration encryption",
            "highly_available": "Highly available",
            "priority": "Priority",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.typed_field("host", forms.ModelChoiceField).queryset = Host.objects.select_related("cluster")
        self.typed_field("migration_policy", forms.ModelChoiceField).empty_label = "The cluster's policy"
        self.typed_field("migration_encrypted", forms.ChoiceField).choices = [
            (TriState.INHERIT, "Inherit from the cluster"),
            (TriState.TRUE, "On: migrate over TLS"),
            (TriState.FALSE, "Off"),
        ]
        self.fields["custom_parallel_migrations"].widget.attrs.update(min=2, max=255)

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("parallel_migrations_policy") != "custom":
            cleaned["custom_parallel_migrations"] = None
            self.errors.pop("custom_parallel_migrations", None)
        return cleaned
