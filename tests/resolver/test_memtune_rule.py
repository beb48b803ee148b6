"""Zero-copy and the VM's memtune hard limit: libvirt lets QEMU lock no more than a declared
<hard_limit>, and zero-copy must lock the guest's RAM plus 1 GiB for QEMU. Below that, zero-copy
is off (parallel connections stay) wherever the source enforces locked memory or has not said;
a source whose QEMU is not held to the limit keeps zero-copy, and says why."""

import pytest

from migrations_app.resolver import (
    DECISION_REASONS,
    ZEROCOPY_LOCK_OVERHEAD_MIB,
    VMValues,
    invariant_violations,
    zerocopy_lock_mib,
)
from tests.resolver.test_rules import CAPABLE, MINIMAL, VLVM, codes, plan_for


def vm(memory=4096, limit=None, **extra) -> VMValues:
    return VMValues(vcpus=16, policy=None, memory_mib=memory, memtune_hard_limit_mib=limit, name="bigdb", **extra)


def zerocopy_plan(*, memory=4096, limit=None, enforced=None, **extra) -> dict:
    source = CAPABLE | {"name": "kvm01"} | ({} if enforced is None else {"memlock_enforced": enforced})
    return plan_for(
        policy=VLVM,
        parallel_migrations_policy="auto_parallel",
        source=source,
        vm=vm(memory, limit, **extra),
        migration_bandwidth="custom",
        migration_bandwidth_custom_mbps=100_000,
    )


def test_zerocopy_must_lock_the_guests_memory_plus_one_gib():
    assert ZEROCOPY_LOCK_OVERHEAD_MIB == 1024
    assert zerocopy_lock_mib(4096) == 5120


@pytest.mark.parametrize("enforced", [True, None])
def test_a_limit_below_what_zerocopy_locks_turns_zerocopy_off_and_keeps_parallel(enforced):
    plan = zerocopy_plan(limit=8, enforced=enforced)
    assert plan["zerocopy"] is False and "VIR_MIGRATE_ZEROCOPY" not in plan["libvirt"]["flags"]
    assert "VIR_MIGRATE_PARALLEL" in plan["libvirt"]["flags"] and plan["parallel_connections"] == 9
    assert codes(plan) == ["zerocopy_memtune_limit"]
    assert invariant_violations(plan) == []


def test_the_decision_names_the_vm_its_limit_and_what_to_change():
    message = zerocopy_plan(limit=8, enforced=True)["decisions"][0]["message"]
    assert message == (
        "The VM bigdb declares a memory hard limit (memtune) of 8 MiB, below the 5120 MiB zero-copy must lock "
        "(its 4096 MiB of memory plus 1024 MiB for QEMU), so this migration will copy memory normally: remove "
        "<hard_limit> from the VM's <memtune>, or raise it to at least 5120 MiB."
    )


def test_a_source_that_has_not_said_is_named_as_such():
    message = zerocopy_plan(limit=8)["decisions"][0]["message"]
    assert "(the source host kvm01 has not reported whether it enforces locked memory)" in message


def test_a_source_that_does_not_enforce_locked_memory_keeps_zerocopy_and_says_so():
    plan = zerocopy_plan(limit=8, enforced=False)
    assert plan["zerocopy"] is True and "VIR_MIGRATE_ZEROCOPY" in plan["libvirt"]["flags"]
    assert plan["decisions"] == [
        {
            "code": "memtune_limit_not_enforced",
            "message": "The VM bigdb declares a memory hard limit (memtune) of 8 MiB, below the 5120 MiB zero-copy "
            "locks, but the source host kvm01 does not hold QEMU to its locked-memory limit, so this migration "
            "uses zero-copy; it would not from a host that does.",
        }
    ]


@pytest.mark.parametrize("limit", [None, 5120, 5121, 2**40])
def test_no_limit_or_one_that_covers_the_memory_and_margin_changes_nothing(limit):
    plan = zerocopy_plan(limit=limit, enforced=True)
    assert plan["zerocopy"] is True and plan["decisions"] == []


def test_one_mib_short_is_short():
    assert zerocopy_plan(limit=5119, enforced=True)["zerocopy"] is False


def test_a_limit_matters_only_when_zerocopy_would_be_on():
    without_zerocopy = plan_for(policy=MINIMAL, source=CAPABLE | {"memlock_enforced": True}, vm=vm(limit=8))
    assert "zerocopy_memtune_limit" not in codes(without_zerocopy)
    encrypted = zerocopy_plan(limit=8, enforced=True, migration_encrypted="true")
    assert codes(encrypted) == ["zerocopy_disabled_encryption"]


def test_both_codes_are_in_the_vocabulary():
    assert {"zerocopy_memtune_limit", "memtune_limit_not_enforced"} <= set(DECISION_REASONS)
