"""The decisions of a running migration, without libvirt: ferry_agent.virt.MigrationMonitor.

The same decisions steer real migrations in tests/virt/ (the schedule, cancel, the hard limit on
the lab); here each rule is pinned down on its own, with statistics written as libvirt reports them.
"""

import itertools

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


def run(monitor, *iterations, every=None):
    """Observe one poll per iteration, `every` seconds apart (default: one pulse); the actions due at
    each, as (iteration, phase, name, params, limit)."""
    every = monitor.pulse_s if every is None else every
    out = []
    for n, iteration in enumerate(iterations, start=1):
        now = monitor.started_at + n * every
        monitor.observe(stats(iteration), now=now)
        for phase, action, limit in monitor.actions_due(now=now):
            out.append((iteration, phase, action["name"], action["params"], limit))
            monitor.record(phase, action, limit, now, None)
            if action["name"] == "abort":
                monitor.aborted("schedule")
    return out


def test_init_actions_run_once_with_the_first_statistics():
    monitor = MigrationMonitor(SCHEDULE, timeout=None, started_at=0)
    assert run(monitor, 1)[:1] == [(1, "init", "setDowntime", ["100"], None)]
    assert all(step[1] != "init" for step in run(monitor, 1, 2, 3))


def test_stalling_steps_count_iterations_from_the_first_pulse_one_step_per_pulse_with_growth():
    monitor = MigrationMonitor(SCHEDULE, timeout=None, started_at=0)
    got = run(monitor, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)
    assert [step[1:] for step in got] == [
        ("init", "setDowntime", ["100"], None),
        ("stalling", "setDowntime", ["150"], 1),
        ("stalling", "setDowntime", ["200"], 2),
        ("stalling", "abort", [], -1),
    ]
    # The first pulse's iteration (1) is the baseline: limit 1 runs when 1 is passed (iteration 3),
    # limit 2 at iteration 4; a pulse without a new iteration runs nothing.
    assert [step[0] for step in got] == [1, 3, 4, 5]
    assert monitor.aborted_by_schedule is True


def test_a_busy_guest_gets_at_most_one_step_per_pulse_however_fast_it_iterates():
    """Polls every 0.5 s with a new iteration each time, under Minimal downtime's schedule (limits
    1, 2, 3, 4, 6, then abort) with Vdsm's 10 s pulse: the abort comes only at about 70 s."""
    schedule = {
        "init": [{"name": "setDowntime", "params": ["100"]}],
        "stalling": [
            *({"limit": limit, "action": {"name": "setDowntime", "params": [str(ms)]}}
              for limit, ms in ((1, 150), (2, 200), (3, 300), (4, 400), (6, 500))),
            {"limit": -1, "action": {"name": "abort", "params": []}},
        ],
    }  # fmt: skip
    monitor = MigrationMonitor(schedule, timeout=None, started_at=0, pulse_s=10)
    got = run(monitor, *range(1, 400), every=0.5)
    times = [iteration * 0.5 for iteration, phase, *_ in got if phase == "stalling"]
    assert len(times) == 6
    assert all(later - earlier >= 10 for earlier, later in itertools.pairwise(times)), times
    assert 60 <= times[-1] <= 80, times  # the abort
    assert monitor.aborted_by_schedule is True


def test_a_jump_over_several_limits_runs_only_one_step():
    schedule = ConvergenceSchedule(SCHEDULE)
    assert schedule.due_stalling(1) == []  # the first pulse: the baseline
    assert names(schedule.due_stalling(9)) == [("stalling", "setDowntime", ["150"], 1)]
    assert schedule.due_stalling(9) == []  # the same iteration again
    assert names(schedule.due_stalling(10)) == [("stalling", "setDowntime", ["200"], 2)]


def test_nothing_runs_after_post_copy_has_started():
    schedule = {
        "init": [],
        "stalling": [
            {"limit": 1, "action": {"name": "postcopy", "params": []}},
            {"limit": -1, "action": {"name": "abort", "params": []}},
        ],
    }
    monitor = MigrationMonitor(schedule, timeout=None, started_at=0, pulse_s=1, stall_s=5)
    got = run(monitor, 1, 2, 3, 4, 5, 6, 7)
    assert [step[2] for step in got] == ["postcopy"]
    assert monitor.result()["postcopy_started"] is True
    assert monitor.overdue(monitor.started_at + 1000) is False  # post-copy cannot be aborted: no watchdog


def test_there_is_no_total_limit_by_default():
    monitor = MigrationMonitor({}, timeout=None, started_at=0)
    monitor.observe(stats(1, remaining=500), now=1)
    assert monitor.overdue(10 * 24 * 3600) is False
    assert monitor.poll_limit(10 * 24 * 3600) == 5.0


def test_the_stall_watchdog_aborts_only_when_no_new_low_is_reached_for_its_time():
    monitor = MigrationMonitor({}, timeout=None, started_at=0, stall_s=60)
    monitor.observe(stats(1, remaining=900), now=10)
    monitor.observe(stats(2, remaining=400), now=50)  # a new low
    monitor.observe(stats(3, remaining=700), now=100)  # dirtied again: no new low
    assert monitor.overdue(109) is False
    assert monitor.overdue(110) is True
    assert monitor.stalled is True and monitor.timed_out is False
    assert monitor.result()["stalled"] is True


def test_no_step_runs_while_the_migration_is_being_aborted():
    monitor = MigrationMonitor(SCHEDULE, timeout=None, started_at=0)
    monitor.aborted("cancel")
    monitor.observe(stats(5), now=10)
    assert [phase for phase, _action, _limit in monitor.actions_due(now=10)] == ["init"]  # and the baseline
    monitor.observe(stats(9), now=20)
    assert [phase for phase, _action, _limit in monitor.actions_due(now=20)] == []
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
