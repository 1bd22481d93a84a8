"""One pass of the probes over a window of a clip (`WindowRunner`) and what it accumulates
(`WindowAcc`: features, predictions, motion), plus the pooling of windows into clips and sets
that `drivesim.eval.suite` builds its report from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from drivesim.eval.adherence import (
    ActionAdherence,
    BoxAdherence,
    ConditionAdherence,
    ConditionPrediction,
    action_adherence,
    box_adherence_from_detections,
    condition_adherence,
    window_action_targets,
)
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.detection import decode_detections
from drivesim.eval.features import clip_windows, window_starts
from drivesim.eval.frechet import frechet_from_features
from drivesim.eval.probe_io import Probes
from drivesim.eval.results import (
    EvalOptions,
)
from drivesim.eval.temporal import MotionStats, motion_stats, psnr, ssim
from drivesim.eval.torchscript_features import TorchScriptFeatures
from drivesim.eval.video_sets import EvalClip
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


@dataclass
class WindowAcc:
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


def clip_stride(clip: EvalClip, probes: Probes) -> int:
    cfg = probes.clip.config
    ratio = cfg.frame_stride * clip.fps / cfg.fps
    if ratio < 1 - 1e-3 or abs(ratio - round(ratio)) > 1e-2 * ratio:
        raise ValueError(
            f"clip {clip.id!r} has fps={clip.fps}; the clip probe needs frames {cfg.frame_stride} apart at "
            f"{cfg.fps} fps, i.e. an fps that is an integer multiple of {cfg.fps / cfg.frame_stride:g}"
        )
    return int(round(ratio))


def cat_features(parts: list[np.ndarray]) -> np.ndarray | None:
    parts = [p for p in parts if p.size]
    return np.concatenate(parts) if parts else None


def frechet_or_none(a: list[np.ndarray] | np.ndarray | None, b: list[np.ndarray] | np.ndarray | None) -> float | None:
    a = cat_features(a) if isinstance(a, list) else a
    b = cat_features(b) if isinstance(b, list) else b
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    return frechet_from_features(a, b)


def mean_motion(parts: list[tuple[MotionStats, int]]) -> MotionStats | None:
    parts = [(m, n) for m, n in parts if n > 0]
    if not parts:
        return None
    total = sum(n for _, n in parts)
    return MotionStats(
        change=sum(m.change * n for m, n in parts) / total, jitter=sum(m.jitter * n for m, n in parts) / total
    )


class WindowRunner:
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
    def window(self, clip: EvalClip, lo: int, hi: int, acc: WindowAcc, truth: EvalClip | None) -> None:
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
        stride = clip_stride(clip, probes)
        cfg = probes.clip.config
        span = (cfg.num_frames - 1) * stride + 1
        ext_hi = min(hi + span - 1, clip.num_frames)
        if window_starts(ext_hi - lo, span, o.clip_hop, hi - lo):
            ext = uint8_to_video(clip.frames[lo:ext_hi], f"clip {clip.id!r}")  # (1, t', c, h, w)
            windows = clip_windows(ext, cfg.num_frames, stride, o.clip_hop, hi - lo)  # (n, num_frames, c, h, w)
            outs = [probes.clip(windows[i : i + o.batch_size].to(device)) for i in range(0, len(windows), o.batch_size)]
            acc.clip_feats.append(torch.cat([x.features for x in outs]).double().cpu().numpy())
            if clip.actions is not None:
                if probes.action is not None:  # actions are read by the action probe where there is one
                    outs = [probes.action(windows[i : i + o.batch_size].to(device))
                            for i in range(0, len(windows), o.batch_size)]  # fmt: skip
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


def condition_scores(acc: WindowAcc) -> ConditionAdherence | None:
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


def action_scores(acc: WindowAcc) -> ActionAdherence | None:
    commanded, recovered = cat_features(acc.commanded), cat_features(acc.recovered)
    if commanded is None or recovered is None:
        return None
    return action_adherence(commanded, recovered)


def pool_windows(acc_windows: list[WindowAcc]) -> WindowAcc:
    """Merge one clip's windows so condition probabilities are pooled per clip."""
    merged = WindowAcc()
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
