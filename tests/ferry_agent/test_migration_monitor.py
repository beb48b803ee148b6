"""The decisions of a running migration, without libvirt: ferry_agent.virt.MigrationMonitor.

The same decisions steer real migrations in tests/virt/ (the schedule, cancel, the hard limit on
the lab); here each rule is pinned down on its own, with statistics written as libvirt reports them.
"""

import pytest

from ferry_agent.virt import ConvergenceSchedule, MigrationMonitor, VirtError, progress_of, progress_report

SCHEDULE = {
    "init": [{"name": "setDowntime", "params": ["100"]}],
    "stalling": [
        {"limit": -1, "action": {"name": "abort", "params": []}},
        {"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
        {"limit": 2, "action": {"name": "setDowntime", "params": ["200"]}},
    ],
}


def stats(iteration, total=1000, remaining=500, **extra):
    return {"type": 2, "memory_iteration": iteration, "data_total": total, "data_remaining": remaining} | extra


def names(due):
    return [(phase, action["name"], action["params"], limit) for phase, action, limit in due]


def run(monitor, *iterations):
    """Observe one poll per iteration; the actions due at each, as (iteration, phase, name, params, limit)."""
    out = []
    for iteration in iterations:
        monitor.observe(stats(iteration))
        for phase, action, limit in monitor.actions_due():
            out.append((iteration, phase, action["name"], action["params"], limit))
            if action["name"] == "abort":
                monitor.aborted("schedule")
    return out


def test_init_actions_run_once_with_the_first_statistics():
    monitor = MigrationMonitor(SCHEDULE, timeout=60, started_at=0)
    assert run(monitor, 1)[:1] == [(1, "init", "setDowntime", ["100"], None)]
    assert all(step[1] != "init" for step in run(monitor, 1, 2, 3))


def test_stalling_steps_run_in_order_one_per_new_iteration_and_the_last_ones_at_the_end():
    monitor = MigrationMonitor(SCHEDULE, timeout=60, started_at=0)
    got = run(monitor, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)
    assert [step[1:] for step in got] == [
        ("init", "setDowntime", ["100"], None),
        ("stalling", "setDowntime", ["150"], 1),
        ("stalling", "setDowntime", ["200"], 2),
        ("stalling", "abort", [], -1),
    ]
    # iteration 1 is not above limit 1; each step waits for a new iteration
    assert [step[0] for step in got] == [1, 2, 3, 4]
    assert monitor.aborted_by_schedule is True


def test_a_jump_over_several_limits_runs_only_one_step():
    schedule = ConvergenceSchedule(SCHEDULE)
    assert names(schedule.due_stalling(9)) == [("stalling", "setDowntime", ["150"], 1)]
    assert schedule.due_stalling(9) == []  # the same iteration again
    assert names(schedule.due_stalling(10)) == [("stalling", "setDowntime", ["200"], 2)]


def test_no_step_runs_while_the_migration_is_being_aborted():
    monitor = MigrationMonitor(SCHEDULE, timeout=60, started_at=0)
    monitor.aborted("cancel")
    monitor.observe(stats(5))
    assert [phase for phase, _action, _limit in monitor.actions_due()] == ["init"]
    assert monitor.aborted_by_schedule is False


def test_statistics_without_an_iteration_count_run_no_stalling_step():
    schedule = ConvergenceSchedule(SCHEDULE)
    assert schedule.due_stalling(None) == []
    assert schedule.due_stalling("3") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"init": [{"name": "reboot", "params": []}]},
        {"stalling": [{"limit": "1", "action": {"name": "abort", "params": []}}]},
        {"init": [{"name": "setDowntime", "params": ["-5"]}]},
        {"later": []},
        ["not", "a", "dict"],
    ],
)
def test_an_unknown_or_malformed_schedule_is_refused_before_anything(bad):
    with pytest.raises(VirtError):
        MigrationMonitor(bad, timeout=60, started_at=0)


def test_progress_never_goes_backwards_and_stays_below_100():
    assert progress_of(stats(1, total=1000, remaining=750), 0) == 25
    assert progress_of(stats(1, total=1000, remaining=900), 25) == 25
    assert progress_of(stats(1, total=1000, remaining=0), 25) == 99
    assert progress_of({"data_total": 0, "data_remaining": 0}, 7) == 7
    assert progress_of({}, 7) == 7


def test_the_progress_report_carries_libvirts_figures_under_ferrys_names():
    report = progress_report(stats(3, total=100, remaining=40, memory_bps=5, downtime=12, extra=1), 60)
    assert report == {
        "progress": 60,
        "data_total": 100,
        "data_processed": None,
        "data_remaining": 40,
        "memory_iteration": 3,
        "memory_bps": 5,
        "downtime_ms": 12,
    }


def test_the_hard_limit_counts_from_the_start_of_the_call():
    monitor = MigrationMonitor({}, timeout=10, started_at=100)
    monitor.begin(200)
    assert monitor.overdue(209.9) is False
    assert monitor.overdue(210) is True
    assert monitor.timed_out is True
    assert monitor.poll_limit(209) == 1.0
    assert monitor.poll_limit(100) == 5.0  # a poll never waits long
    assert monitor.poll_limit(215) == 0.5


def test_cancel_is_remembered_and_asks_for_an_abort_until_one_succeeds():
    monitor = MigrationMonitor({}, timeout=60, started_at=0)
    assert monitor.cancel_answer(False) is False
    assert monitor.cancel_answer(True) is True
    assert monitor.cancel_answer(False) is True  # abortJob refused (no job yet): asked again
    monitor.aborted("cancel")
    assert monitor.cancel_answer(False) is False
    assert monitor.result()["cancelled"] is True
    assert monitor.abort_reason == "cancel"


def test_the_first_abort_reason_is_kept():
    monitor = MigrationMonitor({}, timeout=60, started_at=0)
    monitor.aborted("timeout")
    monitor.aborted("cancel")
    assert monitor.abort_reason == "timeout"


def test_recorded_actions_say_when_and_at_which_iteration_they_ran():
    monitor = MigrationMonitor(SCHEDULE, timeout=60, started_at=10)
    monitor.observe(stats(4))
    entry = monitor.record("stalling", {"name": "setDowntime", "params": ["150"]}, 1, 12.5, None)
    failed = monitor.record("stalling", {"name": "postcopy", "params": []}, 2, 13, "not allowed")
    assert entry == {
        "name": "setDowntime",
        "params": ["150"],
        "phase": "stalling",
        "iteration": 4,
        "limit": 1,
        "at_s": 2.5,
        "ok": True,
        "error": None,
    }
    assert (failed["ok"], failed["error"]) == (False, "not allowed")
    assert monitor.result()["actions"] == [entry, failed]
