"""Adherence: does the generated video do what was asked?

- condition adherence: share of clips whose probe-predicted time of day / crowdedness (frame
  probe, probabilities averaged over the clip's frames) equals the requested label;
- box adherence: recall and mean IoU of requested boxes matched (IoU >= threshold) by the
  frame probe's detector;
- action adherence: Pearson correlation, MAE and R² between commanded actions (averaged over
  each clip-probe window, like the probe's training target) and the actions the clip probe
  recovers from the generated video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from drivesim.eval.checks import check_frames, check_video
from drivesim.eval.clip_probe import ClipProbe
from drivesim.eval.detection import Detections, check_boxes, match_boxes
from drivesim.eval.features import clip_windows, window_starts
from drivesim.eval.frame_probe import FrameProbe
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


@dataclass(frozen=True)
class ConditionPrediction:
    """Per clip: predicted labels and the clip-averaged class probabilities."""

    time_of_day: list[str]
    crowdedness: list[str]
    time_of_day_probs: np.ndarray  # (b, len(TIME_OF_DAY))
    crowdedness_probs: np.ndarray  # (b, len(CROWDEDNESS))


@dataclass(frozen=True)
class ConditionAdherence:
    """Accuracies in [0, 1] over the clips that requested that label (None when none did).
    crowdedness_read: for each requested crowdedness level, how many clips the probe read as each level
    ({requested: {read: count}}, every level listed), which shows where the misses go (e.g. traffic lost)."""

    time_of_day: float | None
    crowdedness: float | None
    both: float | None
    num_clips: int
    crowdedness_read: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True)
class BoxAdherence:
    recall: float | None
    mean_iou: float | None
    num_boxes: int
    num_matched: int
    num_frames: int


@dataclass(frozen=True)
class ActionAgreement:
    pearson: float | None  # None when either side is constant
    mae: float
    r2: float | None


@dataclass(frozen=True)
class ActionAdherence:
    steer: ActionAgreement
    accel: ActionAgreement
    num_windows: int


@torch.no_grad()
def predict_conditions(probe: FrameProbe, video: torch.Tensor, batch_size: int = 128) -> ConditionPrediction:
    """Clip-level label predictions for a `b t c h w` video."""
    check_video("video", video)
    probe.eval()
    b = video.shape[0]
    frames = rearrange(video, "b t c h w -> (b t) c h w")  # (b*t, c, h, w)
    device = next(probe.parameters()).device
    tod, crowd = [], []
    for i in range(0, frames.shape[0], batch_size):
        out = probe(frames[i : i + batch_size].to(device))
        tod.append(out.time_of_day_logits.softmax(-1).cpu())
        crowd.append(out.crowdedness_logits.softmax(-1).cpu())
    tod_p = rearrange(torch.cat(tod), "(b t) k -> b t k", b=b).mean(1).double().numpy()  # (b, k)
    crowd_p = rearrange(torch.cat(crowd), "(b t) k -> b t k", b=b).mean(1).double().numpy()  # (b, k)
    return ConditionPrediction(
        time_of_day=[TIME_OF_DAY[i] for i in tod_p.argmax(1)],
        crowdedness=[CROWDEDNESS[i] for i in crowd_p.argmax(1)],
        time_of_day_probs=tod_p,
        crowdedness_probs=crowd_p,
    )


def _accuracy(predicted: list[str], requested: list[str | None]) -> tuple[float | None, np.ndarray]:
    mask = np.array([r is not None for r in requested], bool)
    hits = np.array([p == r for p, r in zip(predicted, requested)], bool)
    return (float(hits[mask].mean()) if mask.any() else None), hits | ~mask


def condition_adherence(
    predicted: ConditionPrediction, time_of_day: list[str | None], crowdedness: list[str | None]
) -> ConditionAdherence:
    """Compare predictions with requested labels (None = not requested for that clip)."""
    n = len(predicted.time_of_day)
    if len(time_of_day) != n or len(crowdedness) != n:
        raise ValueError(
            f"requested labels must have one entry per clip ({n}), got time_of_day={len(time_of_day)}, "
            f"crowdedness={len(crowdedness)}"
        )
    for name, labels, allowed in (
        ("time_of_day", time_of_day, TIME_OF_DAY),
        ("crowdedness", crowdedness, CROWDEDNESS),
    ):
        for i, label in enumerate(labels):
            if label is not None and label not in allowed:
                raise ValueError(f"requested {name}[{i}]={label!r} is not one of {list(allowed)}")
    tod_acc, tod_hits = _accuracy(predicted.time_of_day, time_of_day)
    crowd_acc, crowd_hits = _accuracy(predicted.crowdedness, crowdedness)
    both_mask = np.array([a is not None and c is not None for a, c in zip(time_of_day, crowdedness)], bool)
    both = float((tod_hits & crowd_hits)[both_mask].mean()) if both_mask.any() else None
    read = {want: {got: sum(1 for p, r in zip(predicted.crowdedness, crowdedness) if r == want and p == got)
                   for got in CROWDEDNESS} for want in CROWDEDNESS}  # fmt: skip
    return ConditionAdherence(time_of_day=tod_acc, crowdedness=crowd_acc, both=both, num_clips=n,
                              crowdedness_read=read)  # fmt: skip


def box_adherence(
    probe: FrameProbe,
    frames: torch.Tensor,
    requested: list[np.ndarray],
    iou_threshold: float = 0.5,
    min_height: float = 0.125,
) -> BoxAdherence:
    """Match requested boxes (normalised xyxy, per frame) with detections on `b c h w` frames.
    Requested boxes shorter than `min_height` (normalised; 0.125 = 8 px of 64) are not counted."""
    check_frames("frames", frames)
    if len(requested) != frames.shape[0]:
        raise ValueError(f"requested boxes must have one entry per frame ({frames.shape[0]}), got {len(requested)}")
    probe.eval()
    detections = probe.detect(frames.to(next(probe.parameters()).device))
    return box_adherence_from_detections(requested, detections, iou_threshold, min_height)


def box_adherence_from_detections(
    requested: list[np.ndarray],
    detections: list[Detections],
    iou_threshold: float = 0.5,
    min_height: float = 0.125,
) -> BoxAdherence:
    """Box adherence from detections already made (one Detections per frame)."""
    if len(requested) != len(detections):
        raise ValueError(
            f"requested boxes ({len(requested)} frames) and detections ({len(detections)}) differ in length"
        )
    total, matched, iou_sum = 0, 0, 0.0
    for i, (want, det) in enumerate(zip(requested, detections)):
        want = check_boxes(f"requested[{i}]", want)
        want = want[(want[:, 3] - want[:, 1]) >= min_height]
        m = match_boxes(want, det.xyxy, iou_threshold)
        total += m.num_ref
        matched += m.num_matched
        iou_sum += float(m.ious.sum())
    return BoxAdherence(
        recall=matched / total if total else None,
        mean_iou=iou_sum / total if total else None,
        num_boxes=total,
        num_matched=matched,
        num_frames=len(detections),
    )


def merge_box_adherence(parts: list[BoxAdherence]) -> BoxAdherence:
    """Pool several BoxAdherence results (e.g. per clip) into one."""
    total = sum(p.num_boxes for p in parts)
    matched = sum(p.num_matched for p in parts)
    iou_sum = sum((p.mean_iou or 0.0) * p.num_boxes for p in parts)
    return BoxAdherence(
        recall=matched / total if total else None,
        mean_iou=iou_sum / total if total else None,
        num_boxes=total,
        num_matched=matched,
        num_frames=sum(p.num_frames for p in parts),
    )


def window_action_targets(
    actions: np.ndarray, num_frames: int, frame_stride: int, hop: int, max_start: int | None = None
) -> np.ndarray:
    """Mean commanded action over each probe window's transitions.

    actions: (b, t, 2) where actions[:, i] led from frame i-1 to frame i. A window starting
    at s covers frames s..s+span-1, so its transitions are actions[s+1 : s+span].
    Returns (b * n_windows, 2) in the order of `clip_windows`.
    """
    actions = np.asarray(actions, np.float64)
    if actions.ndim != 3 or actions.shape[-1] != 2:
        raise ValueError(f"actions must have shape (b, t, 2) [steer, accel], got {actions.shape}")
    span = (num_frames - 1) * frame_stride + 1
    starts = window_starts(actions.shape[1], span, hop, max_start)
    if not starts:
        return np.zeros((0, 2), np.float64)
    out = [actions[:, s + 1 : s + span].mean(axis=1) for s in starts]  # each (b, 2)
    return rearrange(np.stack(out, axis=1), "b n k -> (b n) k")  # (b*n, 2)


@torch.no_grad()
def _window_readout(
    probe: ClipProbe, video: torch.Tensor, hop: int, frame_stride: int | None, batch_size: int, field: str
) -> np.ndarray:
    """One ClipProbeOutput field for every window of video (b, t, c, h, w), windows in `clip_windows` order."""
    cfg = probe.config
    stride = cfg.frame_stride if frame_stride is None else frame_stride
    windows = clip_windows(video, cfg.num_frames, stride, hop)  # (n, num_frames, c, h, w)
    probe.eval()
    device = next(probe.parameters()).device
    chunks = [windows[i : i + batch_size].to(device) for i in range(0, len(windows), batch_size)]
    out = [getattr(probe(chunk), field).cpu() for chunk in chunks]
    return torch.cat(out).double().numpy()


def recover_actions(
    probe: ClipProbe, video: torch.Tensor, hop: int, frame_stride: int | None = None, batch_size: int = 64
) -> np.ndarray:
    """Clip-probe actions for every window: (b, t, c, h, w) -> (b * n_windows, 2).
    frame_stride overrides the probe's own (for video at another frame rate)."""
    return _window_readout(probe, video, hop, frame_stride, batch_size, "actions")


def recover_speed(
    probe: ClipProbe, video: torch.Tensor, hop: int, frame_stride: int | None = None, batch_size: int = 64
) -> np.ndarray:
    """Clip-probe ego speed (m/s) for every window: (b, t, c, h, w) -> (b * n_windows,)."""
    return _window_readout(probe, video, hop, frame_stride, batch_size, "speed")


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = a.std(), b.std()
    if a.size < 2 or sa < 1e-12 or sb < 1e-12:
        return None
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def r_squared(target: np.ndarray, predicted: np.ndarray) -> float | None:
    target, predicted = np.asarray(target, np.float64), np.asarray(predicted, np.float64)
    var = float(((target - target.mean()) ** 2).sum())
    if target.size < 2 or var < 1e-12:
        return None
    return 1.0 - float(((target - predicted) ** 2).sum()) / var


def clip_bootstrap_pearson(
    commanded: np.ndarray, recovered: np.ndarray, num_clips: int, draws: int = 1000, seed: int = 0, level: float = 0.9
) -> list[tuple[float, float] | None]:
    """Per action channel, the central `level` interval of Pearson r over `draws` resamplings of whole clips
    (with replacement): commanded / recovered (num_clips * w, 2), w windows per clip in clip order (as
    `window_action_targets` and `recover_actions` give them). Windows of one clip overlap and share its
    commands, so clips, not windows, are the independent samples; None where r is undefined."""
    commanded, recovered = np.asarray(commanded, np.float64), np.asarray(recovered, np.float64)
    if commanded.shape != recovered.shape or commanded.ndim != 2 or num_clips < 1 or len(commanded) % num_clips:
        raise ValueError(f"commanded {commanded.shape} / recovered {recovered.shape} must be the same "
                         f"(num_clips * w, k) with num_clips={num_clips} >= 1 dividing the rows")  # fmt: skip
    if not 0.0 < level < 1.0 or draws < 1:
        raise ValueError(f"level={level} must be in (0, 1) and draws={draws} >= 1")
    c = rearrange(commanded, "(b w) k -> b w k", b=num_clips)
    r = rearrange(recovered, "(b w) k -> b w k", b=num_clips)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num_clips, (draws, num_clips))
    out: list[tuple[float, float] | None] = []
    for k in range(commanded.shape[1]):
        values = [pearson(c[p, :, k].ravel(), r[p, :, k].ravel()) for p in picks]
        values = np.array([v for v in values if v is not None])
        if len(values) == 0:
            out.append(None)
            continue
        lo, hi = np.quantile(values, [(1.0 - level) / 2, (1.0 + level) / 2])
        out.append((float(lo), float(hi)))
    return out


def action_adherence(commanded: np.ndarray, recovered: np.ndarray) -> ActionAdherence:
    """Agreement per action channel between (n, 2) commanded and (n, 2) recovered actions."""
    commanded, recovered = np.asarray(commanded, np.float64), np.asarray(recovered, np.float64)
    if commanded.shape != recovered.shape or commanded.ndim != 2 or commanded.shape[1] != 2:
        raise ValueError(
            f"commanded and recovered actions must both be (n, 2), got {commanded.shape} and {recovered.shape}"
        )
    if commanded.shape[0] == 0:
        raise ValueError("action adherence needs at least one window; the clips are shorter than one clip-probe window")
    parts = []
    for k in range(2):
        mae = float(np.abs(commanded[:, k] - recovered[:, k]).mean())
        parts.append(
            ActionAgreement(pearson(commanded[:, k], recovered[:, k]), mae, r_squared(commanded[:, k], recovered[:, k]))
        )
    if any(math.isnan(p.mae) for p in parts):
        raise ValueError("action adherence got NaN actions")
    return ActionAdherence(steer=parts[0], accel=parts[1], num_windows=int(commanded.shape[0]))
