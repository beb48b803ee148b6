"""A long run's progress as Ferry keeps it: samples bounded over any length of run, the agent's
heartbeat, and the figures and chart the job page shows (migrations_app.progress)."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_app.models import MigrationJob
from migrations_app.progress import MAX_SAMPLES, chart, live_figures, record_progress, with_sample
from tests.api.conftest import token_client
from tests.factories import JobFactory

GIB = 2**30


def stats(remaining, bps=100 * 2**20, iteration=1, dirty=None):
    out = {"data_total": 8 * GIB, "data_processed": 8 * GIB - remaining, "data_remaining": remaining}
    out |= {"memory_bps": bps, "memory_iteration": iteration}
    if dirty is not None:
        out["dirty_bps"] = dirty
    return out


def test_samples_are_spaced_and_stay_bounded_over_a_run_of_any_length():
    samples: list = []
    taken = 0
    # One report a second for 30 hours of run.
    for second in range(0, 30 * 3600, 1):
        new = with_sample(samples, stats(GIB), float(second))
        if new is not None:
            samples, taken = new, taken + 1
    assert len(samples) <= MAX_SAMPLES
    assert samples[0]["t"] == 0.0 and samples[-1]["t"] >= 30 * 3600 - 3600  # the whole run is covered
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(samples)]
    assert max(gaps) <= 2.5 * min(gaps), (min(gaps), max(gaps))  # evenly thinned, not truncated
    assert taken < 30 * 3600 / 5  # never more than one sample per 5 s


def test_a_sample_too_soon_after_the_last_is_not_taken():
    first = with_sample([], stats(GIB), 0.0)
    assert first == [{"t": 0.0, "r": GIB, "p": 7 * GIB, "bps": 100 * 2**20, "i": 1}]
    assert with_sample(first, stats(GIB), 4.9) is None
    assert len(with_sample(first, stats(GIB), 5.0)) == 2


@pytest.mark.django_db
def test_a_progress_report_stores_statistics_heartbeat_and_a_sample_and_never_goes_backwards():
    started = timezone.now() - timedelta(minutes=10)
    job = JobFactory(state="running", started_at=started, progress=40)
    assert record_progress(job.pk, 30, stats(3 * GIB), now=started + timedelta(seconds=600)) is True
    job.refresh_from_db()
    assert job.progress == 40  # never backwards
    assert job.heartbeat_at == started + timedelta(seconds=600)
    assert job.samples == [{"t": 600.0, "r": 3 * GIB, "p": 5 * GIB, "bps": 100 * 2**20, "i": 1}]
    record_progress(job.pk, 55, stats(2 * GIB, iteration=2), now=started + timedelta(seconds=610))
    job.refresh_from_db()
    assert job.progress == 55 and len(job.samples) == 2 and job.stats["memory_iteration"] == 2


@pytest.mark.django_db
def test_a_report_for_a_job_that_is_not_running_changes_nothing():
    job = JobFactory(state="queued")
    assert record_progress(job.pk, 50, stats(GIB)) is False
    job.refresh_from_db()
    assert job.progress == 0 and job.samples == [] and job.heartbeat_at is None


@pytest.mark.django_db
def test_live_figures_give_elapsed_throughput_eta_pass_dirty_rate_and_steps():
    now = timezone.now()
    job = JobFactory(state="running", started_at=now - timedelta(seconds=3725), heartbeat_at=now - timedelta(seconds=2))
    job.stats = stats(2 * GIB, bps=2**28, iteration=3, dirty=2**20) | {
        "actions": [{"name": "setDowntime", "params": ["150"], "phase": "stalling", "limit": 1, "at_s": 20.5}]
    }
    figures = live_figures(job, now=now)
    assert figures["elapsed_s"] == pytest.approx(3725)
    assert figures["throughput_bps"] == 2**28
    assert figures["eta_s"] == pytest.approx(8.0)  # 2 GiB at 256 MiB/s
    assert figures["iteration"] == 3 and figures["dirty_bps"] == 2**20
    assert figures["heartbeat_age_s"] == pytest.approx(2)
    assert figures["actions"][0]["params"] == ["150"]


def test_the_chart_scales_both_lines_to_the_box():
    samples = [
        {"t": 0.0, "r": 8 * GIB, "bps": 10},
        {"t": 50.0, "r": 4 * GIB, "bps": 20},
        {"t": 100.0, "r": 0, "bps": 5},
    ]
    drawn = chart(samples, width=100, height=50)
    assert drawn["remaining"].split() == ["0.0,2.0", "50.0,25.0", "100.0,48.0"]
    assert drawn["throughput"].split()[1] == "50.0,2.0"  # the highest throughput at the top
    assert drawn["remaining_top"] == 8 * GIB and drawn["seconds"] == 100.0
    assert chart(samples[:1]) is None


@pytest.mark.django_db
def test_the_job_page_and_api_show_a_long_run(admin_client, admin_user):
    now = timezone.now()
    job = JobFactory(state="running", started_at=now - timedelta(hours=2), heartbeat_at=now)
    job.stats = stats(2 * GIB, bps=2**28, iteration=4, dirty=3 * 2**20) | {
        "actions": [{"name": "setDowntime", "params": ["150"], "phase": "stalling", "limit": 1, "at_s": 20.0,
                     "iteration": 3, "ok": True, "error": None}]
    }  # fmt: skip
    job.samples = [{"t": 0.0, "r": 8 * GIB, "bps": 2**27}, {"t": 3600.0, "r": 2 * GIB, "bps": 2**28}]
    job.save()

    page = admin_client.get(f"/migrations/{job.pk}/").content.decode()
    assert 'id="job-run"' in page and "2 h 00 min" in page and "256.0 MiB/s" in page and "3.0 MiB/s" in page
    assert "<polyline" in page and 'id="job-chart"' in page
    assert "setDowntime 150 ms" in page and "20 s" in page

    api = token_client(admin_user)
    detail = api.get(f"/api/migrations/{job.pk}/").json()
    assert detail["samples"] == job.samples and detail["heartbeat_at"] is not None
    listed = api.get("/api/migrations/").json()["results"][0]
    assert "samples" not in listed
    assert MigrationJob.objects.get(pk=job.pk).samples == job.samples
