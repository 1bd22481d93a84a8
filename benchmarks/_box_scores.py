"""Detector scores of requested boxes on frames, for the image-LDM benchmarks: recall at IoU 0.5 (the
issue's metric, boxes >= 8 px high), at other IoU thresholds (a car drawn near its box vs not at all) and
per box height."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drivesim.eval.adherence import box_adherence_from_detections
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.frame_probe import FrameProbe

HEIGHT_BINS_PX = ((8, 12), (12, 20), (20, 1000))  # box heights in pixels (the minimum counted is 8)
IOU_THRESHOLDS = (0.1, 0.3, 0.5, 0.7)


@dataclass(frozen=True)
class BoxScores:
    recall: float | None  # IoU >= 0.5, boxes >= 8 px high
    mean_iou: float | None
    count: int
    by_iou: dict[str, float | None]  # IoU threshold -> recall
    by_height: dict[str, float | None]  # "lo-hi px" box height -> recall at IoU 0.5


def box_scores(probe: FrameProbe, frames: np.ndarray, requested: list[np.ndarray]) -> BoxScores:
    """The detector's recall of `requested` boxes (normalised xyxy per frame) on uint8 frames (n, H, W, 3)."""
    probe.eval()
    with torch.no_grad():
        detections = probe.detect(uint8_to_video(frames[:, None])[:, 0])  # (n, 3, H, W) in [-1, 1]
    main = box_adherence_from_detections(requested, detections)
    heights = [(r[:, 3] - r[:, 1]) * frames.shape[1] for r in requested]  # pixels
    by_height = {}
    for lo, hi in HEIGHT_BINS_PX:
        part = [r[(h >= lo) & (h < hi)] for r, h in zip(requested, heights)]
        by_height[f"{lo}-{hi}px"] = box_adherence_from_detections(part, detections, 0.5, min_height=0.0).recall
    return BoxScores(
        recall=main.recall,
        mean_iou=main.mean_iou,
        count=main.num_boxes,
        by_iou={str(t): box_adherence_from_detections(requested, detections, t).recall for t in IOU_THRESHOLDS},
        by_height=by_height,
    )
