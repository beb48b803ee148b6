"""A running job's progress as Ferry keeps it: the last statistics, the agent's heartbeat, and a
bounded series of samples that the job page draws and the API returns.

A migration of a very large VM runs for hours: the job page shows its throughput, elapsed time,
estimated time left, memory pass, dirty rate and the schedule's steps so far, and a chart of the
data still to send and the throughput over time. Samples are taken at most every SAMPLE_EVERY_S
seconds; when MAX_SAMPLES are stored, every other one is dropped and the spacing doubles, so a job
of any length keeps a whole-run chart in a bounded row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from migrations_app.models import JobState, MigrationJob

SAMPLE_EVERY_S = 5.0
MAX_SAMPLES = 720
_SAMPLE_KEYS = {
    "r": "data_remaining",
    "p": "data_processed",
    "bps": "memory_bps",
    "i": "memory_iteration",
    "d": "dirty_bps",
}


def sample_of(stats: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    """One compact sample: seconds since the start and libvirt's figures that are numbers."""
    sample: dict[str, Any] = {"t": round(max(0.0, elapsed_s), 1)}
    for short, key in _SAMPLE_KEYS.items():
        value = stats.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            sample[short] = value
    return sample


def with_sample(
    samples: list[dict[str, Any]],
    stats: dict[str, Any],
    elapsed_s: float,
    *,
    every_s: float = SAMPLE_EVERY_S,
    max_samples: int = MAX_SAMPLES,
) -> list[dict[str, Any]] | None:
    """samples with one more taken now, or None when the last one is too recent."""
    spacing = every_s
    if len(samples) >= 2:
        # The spacing in force: doubled each time the series was thinned.
        span = samples[-1]["t"] - samples[0]["t"]
        spacing = max(every_s, span / max(1, len(samples) - 1) * 0.9)
    if samples and elapsed_s - samples[-1]["t"] < spacing:
        return None
    out = [*samples, sample_of(stats, elapsed_s)]
    if len(out) > max_samples:
        out = out[::2] if len(out) % 2 else [out[0], *out[1::2]]
    return out


def record_progress(job_id, progress: int, stats: dict[str, Any], *, now: datetime | None = None) -> bool:
    """A running job's progress report: progress never goes backwards; the statistics, the
    heartbeat and (when due) a sample are stored. False when the job is not running."""
    now = now or timezone.now()
    progress = max(0, min(99, int(progress)))
    with transaction.atomic():
        job = (
            MigrationJob.objects.select_for_update()
            .filter(pk=job_id, state=JobState.RUNNING)
            .only("pk", "started_at", "samples")
            .first()
        )
        if job is None:
            return False
        values: dict[str, Any] = {"stats": stats, "heartbeat_at": now}
        elapsed = (now - (job.started_at or now)).total_seconds()
        samples = with_sample(list(job.samples or []), stats, elapsed)
        if samples is not None:
            values["samples"] = samples
        MigrationJob.objects.filter(pk=job_id).update(**values)
        MigrationJob.objects.filter(pk=job_id, progress__lt=progress).update(progress=progress)
    return True


def live_figures(job: MigrationJob, *, now: datetime | None = None) -> dict[str, Any]:
    """What the job page shows for a run: elapsed, throughput, ETA of the current pass, memory
    pass, dirty rate, the schedule's steps so far, and the agent's last report age."""
    now = now or timezone.now()
    stats = job.stats or {}
    end = job.finished_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else None
    bps, remaining = stats.get("memory_bps"), stats.get("data_remaining")
    eta = None
    if job.is_active and isinstance(bps, int) and bps > 0 and isinstance(remaining, int):
        eta = remaining / bps
    heartbeat_age = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at and job.is_active else None
    return {
        "elapsed_s": elapsed,
        "throughput_bps": bps if isinstance(bps, int) else None,
        "eta_s": eta,
        "iteration": stats.get("memory_iteration"),
        "dirty_bps": stats.get("dirty_bps"),
        "actions": list(stats.get("actions") or []),
        "heartbeat_age_s": heartbeat_age,
    }


def chart(samples: list[dict[str, Any]], *, width: int = 600, height: int = 160) -> dict[str, Any] | None:
    """Two polylines over the run, in an SVG box of width x height: data still to send (scaled to
    its largest value) and throughput (scaled to its own). None with fewer than two samples."""
    if len(samples) < 2:
        return None
    t0, t1 = samples[0]["t"], samples[-1]["t"]
    span = max(t1 - t0, 1e-9)

    def line(key: str) -> tuple[str, int]:
        points = [(s["t"], s[key]) for s in samples if key in s]
        top = max((v for _t, v in points), default=0)
        if len(points) < 2 or top <= 0:
            return "", 0
        coords = " ".join(f"{(t - t0) / span * width:.1f},{height - v / top * (height - 4) - 2:.1f}" for t, v in points)
        return coords, top

    remaining, remaining_top = line("r")
    throughput, throughput_top = line("bps")
    return {
        "width": width,
        "height": height,
        "remaining": remaining,
        "remaining_top": remaining_top,
        "throughput": throughput,
        "throughput_top": throughput_top,
        "seconds": t1 - t0,
    }
