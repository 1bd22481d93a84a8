"""The evaluation suite: every metric of generated vs real video, overall and per rollout window.

Clips are processed window by window (`window_seconds` of frames at a time, so minutes-long
rollouts never sit in memory as float tensors; `drivesim.eval.window_pass`); the per-window
results are the long-horizon drift curve, and pooling them gives the overall numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from drivesim.eval.adherence import (
    merge_box_adherence,
)
from drivesim.eval.probe_io import Probes
from drivesim.eval.results import (
    DriftWindow,
    EvalOptions,
    EvalReport,
    FrechetScores,
    SetSummary,
    TemporalScores,
)
from drivesim.eval.temporal import MotionStats
from drivesim.eval.torchscript_features import TorchScriptFeatures
from drivesim.eval.video_sets import VideoSet
from drivesim.eval.window_pass import (
    WindowAcc,
    WindowRunner,
    action_scores,
    cat_features,
    condition_scores,
    frechet_or_none,
    mean_motion,
    pool_windows,
)


@dataclass(frozen=True)
class PreparedReal:
    """Probe outputs of a real set, computed once and reusable across many generated sets (the
    options and networks must be the same ones `evaluate` is then called with)."""

    videos: VideoSet
    clips: list[WindowAcc]
    options: EvalOptions


def prepare_real(
    real: VideoSet,
    probes: Probes,
    options: EvalOptions | None = None,
    fid_net: TorchScriptFeatures | None = None,
    fvd_net: TorchScriptFeatures | None = None,
) -> PreparedReal:
    """Run the probes (and optional FID/FVD networks) over the real set once."""
    o = options or EvalOptions()
    runner = WindowRunner(probes, o, fid_net, fvd_net)
    real_clips: list[WindowAcc] = []
    for clip in tqdm(real.clips, desc="eval real", leave=False):
        size = max(1, int(round(o.window_seconds * clip.fps)))
        parts = []
        for lo in range(0, clip.num_frames, size):
            parts.append(WindowAcc())
            runner.window(clip, lo, min(lo + size, clip.num_frames), parts[-1], None)
        real_clips.append(pool_windows(parts))
    return PreparedReal(videos=real, clips=real_clips, options=o)


@dataclass(frozen=True)
class GeneratedClip:
    """Probe outputs of one generated clip per rollout window, and its pairing with a real clip."""

    windows: list[WindowAcc]
    paired: bool
    paired_delta: float | None  # mean |frame change - real frame change| / 255; None: unpaired or 1 frame
    notes: list[str]


@dataclass(frozen=True)
class PreparedGenerated:
    """Probe outputs of a generated set, one GeneratedClip per clip in order (the options and
    networks must be the ones `evaluate` is then called with)."""

    videos: VideoSet
    clips: list[GeneratedClip]
    options: EvalOptions


def prepare_generated(
    generated: VideoSet,
    real: VideoSet,
    probes: Probes,
    options: EvalOptions | None = None,
    fid_net: TorchScriptFeatures | None = None,
    fvd_net: TorchScriptFeatures | None = None,
) -> PreparedGenerated:
    """Run the probes (and optional FID/FVD networks) over every generated clip, window by window;
    with options.paired, `real` supplies the clips they reproduce."""
    o = options or EvalOptions()
    runner = WindowRunner(probes, o, fid_net, fvd_net)
    real_by_id = real.by_id()
    out: list[GeneratedClip] = []
    for clip in tqdm(generated.clips, desc="eval generated", leave=False):
        notes: list[str] = []
        truth = real_by_id.get(clip.id) if o.paired else None
        if o.paired and truth is None:
            notes.append(f"paired=true but no real clip has id {clip.id!r}; not paired")
        if truth is not None and truth.frames.shape != clip.frames.shape:
            notes.append(
                f"clip {clip.id!r}: same id as a real clip but shape {clip.frames.shape} != {truth.frames.shape}; "
                "not paired"
            )
            truth = None
        delta = None
        if truth is not None:
            d_gen = np.diff(clip.frames.astype(np.float32), axis=0)  # (t-1, h, w, c)
            d_real = np.diff(truth.frames.astype(np.float32), axis=0)  # (t-1, h, w, c)
            if d_gen.size:
                delta = float(np.abs(d_gen - d_real).mean() / 255.0)
        size = max(1, int(round(o.window_seconds * clip.fps)))
        parts = []
        for lo in range(0, clip.num_frames, size):
            parts.append(WindowAcc())
            runner.window(clip, lo, min(lo + size, clip.num_frames), parts[-1], truth)
        out.append(GeneratedClip(windows=parts, paired=truth is not None, paired_delta=delta, notes=notes))
    return PreparedGenerated(videos=generated, clips=out, options=o)


def evaluate(
    real: VideoSet | PreparedReal,
    generated: VideoSet | PreparedGenerated,
    probes: Probes,
    options: EvalOptions | None = None,
    fid_net: TorchScriptFeatures | None = None,
    fvd_net: TorchScriptFeatures | None = None,
) -> EvalReport:
    """All metrics of `generated` against `real`. With options.paired, a generated clip whose id
    matches a real clip of the same shape is its reproduction (same world state and actions):
    PSNR/SSIM and the paired flicker error are computed for it. `real` / `generated` may be a
    PreparedReal / PreparedGenerated to skip recomputing them (drivesim.eval.sharded computes them
    split over ranks)."""
    o = options or EvalOptions()
    for name, given in (("real", real), ("generated", generated)):
        if isinstance(given, (PreparedReal, PreparedGenerated)) and given.options != o:
            raise ValueError(f"{name} was prepared with options {given.options}, evaluate got {o}")
    prepared = real if isinstance(real, PreparedReal) else prepare_real(real, probes, o, fid_net, fvd_net)
    real, real_clips = prepared.videos, prepared.clips
    if not isinstance(generated, PreparedGenerated):
        generated = prepare_generated(generated, real, probes, o, fid_net, fvd_net)
    notes = [n for g in generated.clips for n in g.notes]
    num_paired = sum(g.paired for g in generated.clips)
    paired_deltas = [g.paired_delta for g in generated.clips if g.paired_delta is not None]

    gen_clips: list[WindowAcc] = []
    drift_accs: list[WindowAcc] = []
    drift_bounds: list[tuple[float, float]] = []
    for g in generated.clips:
        for wi, p in enumerate(g.windows):
            if wi >= len(drift_accs):
                drift_accs.append(WindowAcc())
                drift_bounds.append((wi * o.window_seconds, (wi + 1) * o.window_seconds))
            d = drift_accs[wi]
            for name in ("frame_feats", "motion", "boxes", "commanded", "recovered", "cond_probs", "psnr", "ssim"):
                getattr(d, name).extend(getattr(p, name))
            d.num_frames += p.num_frames
        gen_clips.append(pool_windows(g.windows))

    real_all, gen_all = pool_windows(real_clips), WindowAcc()
    for g in gen_clips:
        for name in (
            "frame_feats",
            "clip_feats",
            "fid_feats",
            "fvd_feats",
            "motion",
            "boxes",
            "commanded",
            "recovered",
            "cond_probs",
            "psnr",
            "ssim",
        ):
            getattr(gen_all, name).extend(getattr(g, name))
        gen_all.num_frames += g.num_frames

    halves_fid = halves_fvd = None
    if len(real_clips) >= 4:
        even, odd = real_clips[0::2], real_clips[1::2]
        halves_fid = frechet_or_none([f for a in even for f in a.frame_feats], [f for a in odd for f in a.frame_feats])
        halves_fvd = frechet_or_none([f for a in even for f in a.clip_feats], [f for a in odd for f in a.clip_feats])
    else:
        notes.append("fewer than 4 real clips: no real-vs-real (halves) reference distances")
    frechet = FrechetScores(
        fid_probe=frechet_or_none(gen_all.frame_feats, real_all.frame_feats),
        fvd_probe=frechet_or_none(gen_all.clip_feats, real_all.clip_feats),
        fid=frechet_or_none(gen_all.fid_feats, real_all.fid_feats) if fid_net is not None else None,
        fvd=frechet_or_none(gen_all.fvd_feats, real_all.fvd_feats) if fvd_net is not None else None,
        fid_probe_real_halves=halves_fid,
        fvd_probe_real_halves=halves_fvd,
    )
    if frechet.fvd_probe is None:
        notes.append(f"FVD-probe needs clips of at least {probes.clip.config.span} frames in both sets")

    real_motion = mean_motion(real_all.motion)
    gen_motion = mean_motion(gen_all.motion)
    if real_motion is None or gen_motion is None:
        raise ValueError("temporal metrics need clips of at least 2 frames in both the real and generated sets")

    def flick(m: MotionStats) -> float:
        return abs(m.change - real_motion.change) + abs(m.jitter - real_motion.jitter)

    temporal = TemporalScores(
        generated=gen_motion,
        real=real_motion,
        flicker=flick(gen_motion),
        paired_delta_error=float(np.mean(paired_deltas)) if paired_deltas else None,
        psnr=float(np.mean(gen_all.psnr)) if gen_all.psnr else None,
        ssim=float(np.mean(gen_all.ssim)) if gen_all.ssim else None,
        num_paired_clips=num_paired,
    )
    real_frames = cat_features(real_all.frame_feats)
    drift = []
    for (start, end), d in zip(drift_bounds, drift_accs):
        motion = mean_motion(d.motion)
        drift.append(
            DriftWindow(
                start_s=start,
                end_s=end,
                num_frames=d.num_frames,
                fid_probe=frechet_or_none(cat_features(d.frame_feats), real_frames),
                condition=condition_scores(d),
                box=merge_box_adherence(d.boxes) if d.boxes else None,
                action=action_scores(d),
                motion=motion,
                flicker=None if motion is None else flick(motion),
                psnr=float(np.mean(d.psnr)) if d.psnr else None,
                ssim=float(np.mean(d.ssim)) if d.ssim else None,
            )
        )
    return EvalReport(
        real=SetSummary(real.source, len(real.clips), real_all.num_frames, sorted({c.fps for c in real.clips})),
        generated=SetSummary(
            generated.videos.source,
            len(generated.videos.clips),
            gen_all.num_frames,
            sorted({c.fps for c in generated.videos.clips}),
        ),
        frechet=frechet,
        condition=condition_scores(gen_all),
        box=merge_box_adherence(gen_all.boxes) if gen_all.boxes else None,
        action=action_scores(gen_all),
        temporal=temporal,
        drift=drift,
        notes=notes,
    )
