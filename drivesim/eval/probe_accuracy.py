"""The probes' own accuracy on held-out world episodes; it bounds every metric built on them.

- time of day / crowdedness: per frame, and per clip (probabilities averaged over the frames of
  a `clip_seconds` window, as condition adherence does; crowdedness also for 1, 2, 4, 8 s clips,
  since from one frame "low" and "medium" traffic overlap: vehicles behind the ego car or far
  ahead count towards the density but are not visible);
- vehicle count: mean absolute error;
- detector: recall / precision / mean IoU at IoU >= 0.5 on vehicles taller than `min_box_px`
  pixels (detections that match a smaller vehicle are neither hits nor false positives);
- clip probe: R² and Pearson r of steer, accel (window means of the applied actions) and speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from drivesim.eval.adherence import pearson, r_squared
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.detection import decode_detections, match_boxes
from drivesim.eval.probe_data import Episodes
from drivesim.eval.probe_io import Probes


@dataclass(frozen=True)
class ProbeAccuracy:
    time_of_day_accuracy: float
    crowdedness_accuracy: float
    time_of_day_clip_accuracy: float
    crowdedness_clip_accuracy: float
    crowdedness_accuracy_by_clip_seconds: dict[str, float]
    vehicle_count_mae: float
    detector_recall: float
    detector_precision: float
    detector_mean_iou: float
    steer_r2: float
    accel_r2: float
    speed_r2: float
    steer_pearson: float
    accel_pearson: float
    num_frames: int
    num_boxes: int
    num_clip_windows: int


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


@torch.no_grad()
def probe_accuracy(
    probes: Probes,
    episodes: Episodes,
    frame_step: int = 3,
    clip_hop: int = 6,
    clip_seconds: float = 2.0,
    min_box_px: float = 8.0,
    iou_threshold: float = 0.5,
    batch_size: int = 64,
    device: str = "cpu",
) -> ProbeAccuracy:
    probes.to(device).eval()
    e, t, h = episodes.num_episodes, episodes.num_frames, episodes.frames.shape[2]
    idx = np.arange(0, t, frame_step)
    tod_p, crowd_p, count_err = [], [], []
    n_gt = n_hit = n_det = n_fp = 0
    iou_sum = 0.0
    for ep in range(e):
        video = uint8_to_video(episodes.frames[ep, idx])[0]  # (n, c, h, w)
        for lo in range(0, len(idx), batch_size):
            out = probes.frame(video[lo : lo + batch_size].to(device))
            tod_p.append(out.time_of_day_logits.softmax(-1).cpu().numpy())
            crowd_p.append(out.crowdedness_logits.softmax(-1).cpu().numpy())
            dets = decode_detections(out.heatmap_logits, out.offset, out.log_size, probes.frame.config.score_threshold)
            for k, det in enumerate(dets):
                gt = episodes.boxes[ep][int(idx[lo + k])]
                count_err.append(abs(float(out.vehicle_count[k]) - len(gt)))
                tall = (gt[:, 3] - gt[:, 1]) * h > min_box_px
                m = match_boxes(gt[tall], det.xyxy, iou_threshold)
                small = match_boxes(gt[~tall], det.xyxy[~m.matched_det], iou_threshold)
                n_gt += m.num_ref
                n_hit += m.num_matched
                iou_sum += float(m.ious.sum())
                n_det += len(det.xyxy) - small.num_matched
                n_fp += int((~m.matched_det).sum()) - small.num_matched
    tod_p = rearrange(np.concatenate(tod_p), "(e n) k -> e n k", e=e)  # (e, n, k)
    crowd_p = rearrange(np.concatenate(crowd_p), "(e n) k -> e n k", e=e)  # (e, n, k)
    tod_true = episodes.time_of_day[:, None]
    crowd_true = episodes.crowdedness[:, None]
    fps = probes.clip.config.fps

    def clip_accuracy(probs: np.ndarray, truth: np.ndarray, seconds: float) -> float:
        """Accuracy of clip-averaged probabilities over consecutive clips of `seconds`."""
        per_clip = min(probs.shape[1], max(1, int(round(seconds * fps / frame_step))))
        n_clips = probs.shape[1] // per_clip
        pooled = rearrange(probs[:, : n_clips * per_clip], "e (c f) k -> e c f k", f=per_clip).mean(2)  # (e, c, k)
        return float((pooled.argmax(-1) == truth).mean())

    durations = [s for s in (1.0, 2.0, 4.0, 8.0) if s * fps <= t] or [t / fps]

    cfg = probes.clip.config
    span = cfg.span
    starts = list(range(0, t - span + 1, clip_hop))
    preds, targets, speeds, speed_true = [], [], [], []
    for ep in range(e):
        for lo in range(0, len(starts), batch_size):
            chunk = starts[lo : lo + batch_size]
            clips = np.stack([episodes.frames[ep, s : s + span : cfg.frame_stride] for s in chunk])
            video = uint8_to_video(clips).to(device)
            out = probes.clip(video)
            reader = out if probes.action is None else probes.action(video)  # actions: the action probe's
            preds.append(reader.actions.cpu().numpy())
            speeds.append(out.speed.cpu().numpy())
            targets += [episodes.actions[ep, s + 1 : s + span].mean(0) for s in chunk]
            speed_true += [episodes.speed[ep, s : s + span].mean() for s in chunk]
    preds_a, targets_a = np.concatenate(preds), np.stack(targets)
    speeds_a, speed_true_a = np.concatenate(speeds), np.array(speed_true)
    return ProbeAccuracy(
        time_of_day_accuracy=float((tod_p.argmax(-1) == tod_true).mean()),
        crowdedness_accuracy=float((crowd_p.argmax(-1) == crowd_true).mean()),
        time_of_day_clip_accuracy=clip_accuracy(tod_p, tod_true, clip_seconds),
        crowdedness_clip_accuracy=clip_accuracy(crowd_p, crowd_true, clip_seconds),
        crowdedness_accuracy_by_clip_seconds={f"{s:g}": clip_accuracy(crowd_p, crowd_true, s) for s in durations},
        vehicle_count_mae=float(np.mean(count_err)),
        detector_recall=n_hit / n_gt if n_gt else float("nan"),
        detector_precision=(n_det - n_fp) / n_det if n_det else float("nan"),
        detector_mean_iou=iou_sum / n_gt if n_gt else float("nan"),
        steer_r2=_nan(r_squared(targets_a[:, 0], preds_a[:, 0])),
        accel_r2=_nan(r_squared(targets_a[:, 1], preds_a[:, 1])),
        speed_r2=_nan(r_squared(speed_true_a, speeds_a)),
        steer_pearson=_nan(pearson(targets_a[:, 0], preds_a[:, 0])),
        accel_pearson=_nan(pearson(targets_a[:, 1], preds_a[:, 1])),
        num_frames=int(e * len(idx)),
        num_boxes=n_gt,
        num_clip_windows=int(len(targets)),
    )
