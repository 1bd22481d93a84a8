"""Do generated frames keep the vehicles the true frames have? Scored against the world's own boxes.

The crowdedness label, the vehicle counts (`drivesim.eval.traffic`) and the FID/FVD-probes all read a large
car-coloured smear as traffic (docs/results.md, *Crowdedness over whole clips*). Where the true future is known (a
rollout started from true keyframes and told the true actions, a few keyframes ahead, before the other cars' own
choices part the two), the detector's boxes on a generated frame can be matched to the true boxes of the same
frame: **recall** (true vehicles found at the IoU threshold) falls when cars fade, **precision** (detections that
are a true vehicle) falls when smears or blobs are counted: a blob where no car is raises neither.

Shapes: frames (n, h, w, 3) uint8; boxes per frame (k, 4) float32 normalised xyxy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.detection import Detections, check_boxes, match_boxes
from drivesim.eval.frame_probe import FrameProbe


@dataclass(frozen=True)
class KeepScores:
    """recall: true boxes at least `min_height` high matched by a detection at the IoU threshold (None: no such
    box); precision: detections matched to a true box of any height (None: nothing detected); detected / true:
    mean detections / true boxes (of at least `min_height`) per frame."""

    recall: float | None
    precision: float | None
    detected: float
    true: float
    num_frames: int


@torch.no_grad()
def detect_frames(probe: FrameProbe, frames: np.ndarray, batch_size: int = 256) -> list[Detections]:
    """The probe's detections on uint8 frames (n, h, w, 3), one `Detections` per frame."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (n, h, w, 3) uint8, got shape {frames.shape} dtype {frames.dtype}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    x = uint8_to_video(frames[:, None])[:, 0]  # n 3 h w in [-1, 1]
    device = next(probe.parameters()).device
    probe.eval()
    return [d for i in range(0, len(x), batch_size) for d in probe.detect(x[i : i + batch_size].to(device))]


def keep_scores(
    detections: list[Detections], truth: list[np.ndarray], iou_threshold: float = 0.5, min_height: float = 0.125
) -> KeepScores:
    """`KeepScores` of detections on n frames against the true boxes of the same n frames."""
    if len(detections) != len(truth):
        raise ValueError(f"detections ({len(detections)} frames) and truth ({len(truth)} frames) differ in length")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold} must be in (0, 1]")
    if not 0.0 <= min_height < 1.0:
        raise ValueError(f"min_height={min_height} must be in [0, 1) (a fraction of the frame's height)")
    found = counted = hits = num_det = 0
    for i, (det, true) in enumerate(zip(detections, truth)):
        true = check_boxes(f"truth[{i}]", true)
        tall = true[(true[:, 3] - true[:, 1]) >= min_height]
        m = match_boxes(tall, det.xyxy, iou_threshold)
        found, counted = found + m.num_matched, counted + m.num_ref
        hits += int(match_boxes(true, det.xyxy, iou_threshold).matched_det.sum())
        num_det += len(det.xyxy)
    n = max(1, len(detections))
    return KeepScores(
        recall=found / counted if counted else None,
        precision=hits / num_det if num_det else None,
        detected=num_det / n,
        true=counted / n,
        num_frames=len(detections),
    )
