"""The evaluation suite: every metric of generated vs real video, overall and per rollout window.

Clips are processed window by window (`window_seconds` of frames at a time, so minutes-long
rollouts never sit in memory as float tensors); the per-window results are the long-horizon
drift curve, and pooling them gives the overall numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from drivesim.eval.adherence import (
    ActionAdherence,
    BoxAdherence,
    ConditionAdherence,
    ConditionPrediction,
    action_adherence,
    box_adherence_from_detections,
    condition_adherence,
    merge_box_adherence,
    window_action_targets,
)
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.detection import decode_detections
from drivesim.eval.features import clip_windows, window_starts
from drivesim.eval.frechet import frechet_from_features
from drivesim.eval.probe_io import Probes
from drivesim.eval.results import (
    DriftWindow,
    EvalOptions,
    EvalReport,
    FrechetScores,
    SetSummary,
    TemporalScores,
)
from drivesim.eval.temporal import MotionStats, motion_stats, psnr, ssim
from drivesim.eval.torchscript_features import TorchScriptFeatures
from drivesim.eval.video_sets import EvalClip, VideoSet
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


@dataclass
class _Acc:
    """Accumulates per-window pieces of one set (or one drift window)."""

    frame_feats: list[np.ndarray] = field(default_factory=list)
    clip_feats: list[np.ndarray] = field(default_factory=list)
    fid_feats: list[np.ndarray] = field(default_factory=list)
    fvd_feats: list[np.ndarray] = field(default_factory=list)
    motion: list[tuple[MotionStats, int]] = field(default_factory=list)
    boxes: list[BoxAdherence] = field(default_factory=list)
    commanded: list[np.ndarray] = field(default_factory=list)
    recovered: list[np.ndarray] = field(default_factory=list)
    cond_probs: list[tuple[np.ndarray, np.ndarray, str | None, str | None]] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    num_frames: int = 0


def _clip_stride(clip: EvalClip, probes: Probes) -> int:
    cfg = probes.clip.config
    ratio = cfg.frame_stride * clip.fps / cfg.fps
    if ratio < 1 - 1e-3 or abs(ratio - round(ratio)) > 1e-2 * ratio:
        raise ValueError(
            f"clip {clip.id!r} has fps={clip.fps}; the clip probe needs frames {cfg.frame_stride} apart at "
            f"{cfg.fps} fps, i.e. an fps that is an integer multiple of {cfg.fps / cfg.frame_stride:g}"
        )
    return int(round(ratio))


def _cat(parts: list[np.ndarray]) -> np.ndarray | None:
    parts = [p for p in parts if p.size]
    return np.concatenate(parts) if parts else None


def _fd(a: list[np.ndarray] | np.ndarray | None, b: list[np.ndarray] | np.ndarray | None) -> float | None:
    a = _cat(a) if isinstance(a, list) else a
    b = _cat(b) if isinstance(b, list) else b
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    return frechet_from_features(a, b)


def _mean_motion(parts: list[tuple[MotionStats, int]]) -> MotionStats | None:
    parts = [(m, n) for m, n in parts if n > 0]
    if not parts:
        return None
    total = sum(n for _, n in parts)
    return MotionStats(
        change=sum(m.change * n for m, n in parts) / total, jitter=sum(m.jitter * n for m, n in parts) / total
    )


class _Runner:
    def __init__(
        self,
        probes: Probes,
        options: EvalOptions,
        fid_net: TorchScriptFeatures | None,
        fvd_net: TorchScriptFeatures | None,
    ) -> None:
        self.probes = probes.to(options.device).eval()
        self.o = options
        self.fid_net, self.fvd_net = fid_net, fvd_net

    @torch.no_grad()
    def window(self, clip: EvalClip, lo: int, hi: int, acc: _Acc, truth: EvalClip | None) -> None:
        o, probes = self.o, self.probes
        video = uint8_to_video(clip.frames[lo:hi], f"clip {clip.id!r}")  # (1, t, c, h, w)
        acc.num_frames += hi - lo
        if hi - lo >= 2:
            acc.motion.append((motion_stats(video), hi - lo - 1))
        idx = list(range(0, hi - lo, o.frame_step))
        frames = video[0, idx]  # (n, c, h, w) sampled frames
        device = o.device
        outs = [probes.frame(frames[i : i + o.batch_size].to(device)) for i in range(0, len(idx), o.batch_size)]
        acc.frame_feats.append(torch.cat([x.features for x in outs]).double().cpu().numpy())
        tod = torch.cat([x.time_of_day_logits.softmax(-1) for x in outs]).double().cpu().numpy()
        crowd = torch.cat([x.crowdedness_logits.softmax(-1) for x in outs]).double().cpu().numpy()
        acc.cond_probs.append((tod.sum(0), crowd.sum(0), clip.time_of_day, clip.crowdedness))
        if clip.boxes is not None:
            keep = [k for k, i in enumerate(idx) if clip.boxes[lo + i] is not None]
            if keep:
                dets = []
                for x in outs:
                    dets += decode_detections(
                        x.heatmap_logits, x.offset, x.log_size, probes.frame.config.score_threshold
                    )
                acc.boxes.append(
                    box_adherence_from_detections(
                        [clip.boxes[lo + idx[k]] for k in keep],
                        [dets[k] for k in keep],
                        o.iou_threshold,
                        o.min_box_height,
                    )
                )
        # Clip windows *starting* in [lo, hi) may reach past hi, so they all count exactly once.
        stride = _clip_stride(clip, probes)
        cfg = probes.clip.config
        span = (cfg.num_frames - 1) * stride + 1
        ext_hi = min(hi + span - 1, clip.num_frames)
        if window_starts(ext_hi - lo, span, o.clip_hop, hi - lo):
            ext = uint8_to_video(clip.frames[lo:ext_hi], f"clip {clip.id!r}")  # (1, t', c, h, w)
            windows = clip_windows(ext, cfg.num_frames, stride, o.clip_hop, hi - lo)  # (n, num_frames, c, h, w)
            outs = [probes.clip(windows[i : i + o.batch_size].to(device)) for i in range(0, len(windows), o.batch_size)]
            acc.clip_feats.append(torch.cat([x.features for x in outs]).double().cpu().numpy())
            if clip.actions is not None:
                acc.recovered.append(torch.cat([x.actions for x in outs]).double().cpu().numpy())
                acc.commanded.append(
                    window_action_targets(clip.actions[None, lo:ext_hi], cfg.num_frames, stride, o.clip_hop, hi - lo)
                )
        if self.fid_net is not None:
            acc.fid_feats.append(self.fid_net(video[:, idx], batch_size=o.batch_size))
        fvd_hi = min(hi + (self.fvd_net.config.num_frames - 1 if self.fvd_net is not None else 0), clip.num_frames)
        if self.fvd_net is not None and window_starts(fvd_hi - lo, self.fvd_net.config.num_frames, o.clip_hop, hi - lo):
            ext = uint8_to_video(clip.frames[lo:fvd_hi], f"clip {clip.id!r}")  # (1, t', c, h, w)
            acc.fvd_feats.append(self.fvd_net(ext, hop=o.clip_hop, batch_size=o.batch_size, max_start=hi - lo))
        if truth is not None:
            target = uint8_to_video(truth.frames[lo:hi], f"ground truth {truth.id!r}")
            acc.psnr.append(psnr(video, target))
            acc.ssim.append(ssim(video, target))


def _conditions(acc: _Acc) -> ConditionAdherence | None:
    """Clip-level adherence from per-window probability sums (one entry per clip window)."""
    if not acc.cond_probs:
        return None
    tod = np.stack([p[0] for p in acc.cond_probs])
    crowd = np.stack([p[1] for p in acc.cond_probs])
    pred = ConditionPrediction(
        time_of_day=[TIME_OF_DAY[i] for i in tod.argmax(1)],
        crowdedness=[CROWDEDNESS[i] for i in crowd.argmax(1)],
        time_of_day_probs=tod / tod.sum(1, keepdims=True),
        crowdedness_probs=crowd / crowd.sum(1, keepdims=True),
    )
    req_tod = [p[2] for p in acc.cond_probs]
    req_crowd = [p[3] for p in acc.cond_probs]
    if all(r is None for r in req_tod) and all(r is None for r in req_crowd):
        return None
    return condition_adherence(pred, req_tod, req_crowd)


def _actions(acc: _Acc) -> ActionAdherence | None:
    commanded, recovered = _cat(acc.commanded), _cat(acc.recovered)
    if commanded is None or recovered is None:
        return None
    return action_adherence(commanded, recovered)


def _per_clip(acc_windows: list[_Acc]) -> _Acc:
    """Merge one clip's windows so condition probabilities are pooled per clip."""
    merged = _Acc()
    for a in acc_windows:
        for name in (
            "frame_feats",
            "clip_feats",
            "fid_feats",
            "fvd_feats",
            "motion",
            "boxes",
            "commanded",
            "recovered",
            "psnr",
            "ssim",
        ):
            getattr(merged, name).extend(getattr(a, name))
        merged.num_frames += a.num_frames
    probs = [a.cond_probs[0] for a in acc_windows if a.cond_probs]
    if probs:
        merged.cond_probs.append((sum(p[0] for p in probs), sum(p[1] for p in probs), probs[0][2], probs[0][3]))
    return merged


@dataclass(frozen=True)
class PreparedReal:
    """Probe outputs of a real set, computed once and reusable across many generated sets (the
    options and networks must be the same ones `evaluate` is then called with)."""

    videos: VideoSet
    clips: list[_Acc]
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
    runner = _Runner(probes, o, fid_net, fvd_net)
    real_clips: list[_Acc] = []
    for clip in tqdm(real.clips, desc="eval real", leave=False):
        size = max(1, int(round(o.window_seconds * clip.fps)))
        parts = []
        for lo in range(0, clip.num_frames, size):
            parts.append(_Acc())
            runner.window(clip, lo, min(lo + size, clip.num_frames), parts[-1], None)
        real_clips.append(_per_clip(parts))
    return PreparedReal(videos=real, clips=real_clips, options=o)


@dataclass(frozen=True)
class GeneratedClip:
    """Probe outputs of one generated clip per rollout window, and its pairing with a real clip."""

    windows: list[_Acc]
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
    runner = _Runner(probes, o, fid_net, fvd_net)
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
            parts.append(_Acc())
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

    gen_clips: list[_Acc] = []
    drift_accs: list[_Acc] = []
    drift_bounds: list[tuple[float, float]] = []
    for g in generated.clips:
        for wi, p in enumerate(g.windows):
            if wi >= len(drift_accs):
                drift_accs.append(_Acc())
                drift_bounds.append((wi * o.window_seconds, (wi + 1) * o.window_seconds))
            d = drift_accs[wi]
            for name in ("frame_feats", "motion", "boxes", "commanded", "recovered", "cond_probs", "psnr", "ssim"):
                getattr(d, name).extend(getattr(p, name))
            d.num_frames += p.num_frames
        gen_clips.append(_per_clip(g.windows))

    real_all, gen_all = _per_clip(real_clips), _Acc()
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
        halves_fid = _fd([f for a in even for f in a.frame_feats], [f for a in odd for f in a.frame_feats])
        halves_fvd = _fd([f for a in even for f in a.clip_feats], [f for a in odd for f in a.clip_feats])
    else:
        notes.append("fewer than 4 real clips: no real-vs-real (halves) reference distances")
    frechet = FrechetScores(
        fid_probe=_fd(gen_all.frame_feats, real_all.frame_feats),
        fvd_probe=_fd(gen_all.clip_feats, real_all.clip_feats),
        fid=_fd(gen_all.fid_feats, real_all.fid_feats) if fid_net is not None else None,
        fvd=_fd(gen_all.fvd_feats, real_all.fvd_feats) if fvd_net is not None else None,
        fid_probe_real_halves=halves_fid,
        fvd_probe_real_halves=halves_fvd,
    )
    if frechet.fvd_probe is None:
        notes.append(f"FVD-probe needs clips of at least {probes.clip.config.span} frames in both sets")

    real_motion = _mean_motion(real_all.motion)
    gen_motion = _mean_motion(gen_all.motion)
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
    real_frames = _cat(real_all.frame_feats)
    drift = []
    for (start, end), d in zip(drift_bounds, drift_accs):
        motion = _mean_motion(d.motion)
        drift.append(
            DriftWindow(
                start_s=start,
                end_s=end,
                num_frames=d.num_frames,
                fid_probe=_fd(_cat(d.frame_feats), real_frames),
                condition=_conditions(d),
                box=merge_box_adherence(d.boxes) if d.boxes else None,
                action=_actions(d),
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
        condition=_conditions(gen_all),
        box=merge_box_adherence(gen_all.boxes) if gen_all.boxes else None,
        action=_actions(gen_all),
        temporal=temporal,
        drift=drift,
        notes=notes,
    )
