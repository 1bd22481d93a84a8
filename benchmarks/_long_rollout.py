"""Long-rollout drift of benchmarks/video_ldm_quality.py (section 3): minutes of keyframes from one
real frame per rollout, context guidance on and off, FVD-/FID-probe per window against a pooled real
reference, drift ratio = window / first window, the real stream's own windows as the floor, and each
window over the real stream's same window."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from _video_eval import (
    WindowStream,
    interval_means,
    plot_windows,
    probe_stride,
    render_stream,
    rollout,
    storyboard,
    window_frechet,
)

from drivesim.eval.probe_data import episode_conditions
from drivesim.eval.probe_io import Probes
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.world_model import WorldModel

LONG_REFERENCE_SEED = 5_000_000
LONG_START_SEED = 6_000_000
DRIFT_TARGET = 1.5


class LongSizes(Protocol):
    minutes: float  # long rollout length
    window_seconds: float
    long_rollouts: int
    long_reference: int  # real reference episodes
    long_hop: int  # keyframes between clip-probe windows


@dataclass(frozen=True)
class LongSetting:
    context_guidance: float | None  # None: the real episodes
    fvd_probe: list[float | None]
    fid_probe: list[float | None]
    fvd_drift_ratio: list[float | None]
    fid_drift_ratio: list[float | None]
    max_fvd_drift_ratio: float | None
    passes: bool  # no window worse than DRIFT_TARGET x the first (FVD-probe)
    seconds: float
    # window / the real stream's same window (FVD-probe); unlike the drift ratio it does not assume
    # that the first window is sound
    fvd_over_real: list[float | None] | None = None
    max_fvd_over_real: float | None = None


@dataclass(frozen=True)
class LongQuality:
    window_seconds: float
    num_windows: int
    rollouts: int
    interpolate: bool
    output_fps: float
    probe_frame_gap_s: float  # time between clip-probe frames here
    probe_trained_gap_s: float
    guided: LongSetting
    unguided: LongSetting
    real: LongSetting  # real episodes (same seeds as the starts) vs the reference: the floor
    target_max_drift: float


def ratios(values: list[float | None]) -> list[float | None]:
    first = values[0] if values else None
    return [None if v is None or not first else v / first for v in values]


def worst(values: list[float | None]) -> float | None:
    known = [x for x in values if x is not None]
    return max(known) if known else None


def over_real(gen: LongSetting, real: LongSetting) -> LongSetting:
    """`gen` with its FVD-probe per window divided by the real stream's same window."""
    r = [None if g is None or not f else g / f for g, f in zip(gen.fvd_probe, real.fvd_probe)]
    return replace(gen, fvd_over_real=r, max_fvd_over_real=worst(r))


def setting(s: float | None, fvd: list[float | None], fid: list[float | None], seconds: float) -> LongSetting:
    r = ratios(fvd)
    w = worst(r)
    return LongSetting(s, fvd, fid, r, ratios(fid), w, w is not None and w <= DRIFT_TARGET, seconds)



def measure_long(
    world: WorldModel, base: EngineConfig, probes: Probes, z: LongSizes, device: str, seed: int, out: Path
) -> LongQuality:
    engine = LearnedEngine(world, base)
    stride, f, fps = engine.keyframe_stride, engine.frames_per_step, engine.output_fps
    window = max(2, int(round(z.window_seconds * fps)))
    n_windows = int(z.minutes * 60 // z.window_seconds)
    if n_windows < 1:
        raise ValueError(f"--minutes={z.minutes} is shorter than one --window-seconds={z.window_seconds} window")
    steps = math.ceil((n_windows * window - 1) / f)
    num_source = stride + steps * stride + 1
    gap = probe_stride(probes, fps)

    def stream() -> WindowStream:
        return WindowStream(probes, window, gap, z.long_hop, max(1, f // 4), device)

    ref = [stream() for _ in range(z.long_reference)]
    for i, s in enumerate(ref):
        render_stream(LONG_REFERENCE_SEED + i, i, num_source, stride // f, stride, engine.frame_size, s)
    ref_clip = np.concatenate([w.clip for s in ref for w in s.windows])
    ref_frame = np.concatenate([w.frame for s in ref for w in s.windows])
    real = [stream() for _ in range(z.long_rollouts)]
    starts, actions, speeds = [], [], []
    for i, s in enumerate(real):
        first, acts, v0 = render_stream(LONG_START_SEED + i, i, num_source, stride // f, stride, engine.frame_size, s)
        starts.append(first)
        actions.append(acts)
        speeds.append(v0)
    commanded = interval_means(np.stack(actions), stride, stride, steps)  # (r, steps, 2)
    tods, crowds = zip(*[episode_conditions(i) for i in range(z.long_rollouts)])
    results, thumbs = {}, {"real": np.stack([w.thumb for w in real[0].windows])}
    for name, s in (("guided", base.context_guidance), ("unguided", 1.0)):
        start = time.perf_counter()
        eng = LearnedEngine(world, replace(base, context_guidance=s))
        gen = [stream() for _ in range(z.long_rollouts)]
        streams = np.stack(starts), list(tods), list(crowds)
        for chunk in rollout(eng, *streams, commanded, seed, f"long {name}", np.array(speeds)):
            for i, g in enumerate(gen):
                g.push(chunk[i])
        windows = [g.windows for g in gen]
        seconds = time.perf_counter() - start
        results[name] = setting(s, window_frechet(windows, ref_clip, "clip"),
                                window_frechet(windows, ref_frame, "frame"), seconds)
        thumbs[f"{name} s={s:g}"] = np.stack([w.thumb for w in gen[0].windows])
    real_windows = [s.windows for s in real]
    floor = setting(None, window_frechet(real_windows, ref_clip, "clip"),
                    window_frechet(real_windows, ref_frame, "frame"), 0.0)
    results = {k: over_real(v, floor) for k, v in results.items()}
    series = {
        metric: {f"{k} (s={v.context_guidance:g})": getattr(v, key) for k, v in results.items()}
        | {"real (floor)": getattr(floor, key)}
        for metric, key in (("FVD-probe", "fvd_probe"), ("FID-probe", "fid_probe"))
    }
    plot_windows(series, z.window_seconds, out / "long_rollout.png")
    titles = [f"{i * z.window_seconds:g} s" for i in range(n_windows)]
    storyboard(thumbs, out / "long_rollout_storyboard.png", columns=n_windows, titles=titles)
    cfg = probes.clip.config
    return LongQuality(z.window_seconds, n_windows, z.long_rollouts, base.interpolate, fps, gap / fps,
                       cfg.frame_stride / cfg.fps, results["guided"], results["unguided"], floor, DRIFT_TARGET)
