"""Centre-heatmap vehicle detection (CenterNet-style, Zhou et al. 2019): targets, loss, decoding,
and box matching (IoU, recall) used by the detector's accuracy and by box adherence.

Boxes are normalised xyxy in [0, 1]. On the output grid (stride 4: 16 × 32 cells for a
64 × 128 frame) each vehicle is a Gaussian peak at its centre cell; at that cell the net
regresses the sub-cell centre offset and the log box size in cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CenterTargets:
    """heatmap (b, 1, gh, gw) in [0, 1]; offset, log_size (b, 2, gh, gw); mask (b, 1, gh, gw) at centres."""

    heatmap: torch.Tensor
    offset: torch.Tensor
    log_size: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Detections:
    """Detected boxes of one frame: xyxy (n, 4) normalised float32, scores (n,) float32, best first."""

    xyxy: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class BoxMatch:
    """Greedy one-to-one matching of reference boxes to detections at an IoU threshold.

    ious: (n_ref,) IoU of each reference box with its matched detection (0 when unmatched).
    matched_ref: (n_ref,) bool; matched_det: (n_det,) bool.
    """

    ious: np.ndarray
    matched_ref: np.ndarray
    matched_det: np.ndarray

    @property
    def num_ref(self) -> int:
        return int(self.matched_ref.shape[0])

    @property
    def num_matched(self) -> int:
        return int(self.matched_ref.sum())


def check_boxes(name: str, boxes: np.ndarray) -> np.ndarray:
    """Validate (n, 4) normalised xyxy boxes with x1 <= x2, y1 <= y2."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0, 4), np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) as normalised [x1, y1, x2, y2], got {boxes.shape}")
    if not np.all(np.isfinite(boxes)) or boxes.min() < -1e-3 or boxes.max() > 1 + 1e-3:
        raise ValueError(f"{name} must be normalised to [0, 1], got range [{boxes.min()}, {boxes.max()}]")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"{name} must satisfy x1 <= x2 and y1 <= y2")
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (n, m) of xyxy boxes a (n, 4) and b (m, 4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])  # (n, m, 2)
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (n, m, 2)
    inter = np.clip(rb - lt, 0.0, None).prod(axis=-1)  # (n, m)
    area_a = (a[:, 2:] - a[:, :2]).clip(0, None).prod(axis=-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(reference: np.ndarray, detected: np.ndarray, iou_threshold: float = 0.5) -> BoxMatch:
    """Greedy matching, highest IoU first; a pair counts only if IoU >= iou_threshold."""
    ref = check_boxes("reference boxes", reference)
    det = check_boxes("detected boxes", detected)
    ious = np.zeros(len(ref), np.float64)
    matched_ref = np.zeros(len(ref), bool)
    matched_det = np.zeros(len(det), bool)
    if len(ref) and len(det):
        iou = box_iou(ref, det)  # (n_ref, n_det)
        order = np.argsort(-iou, axis=None)
        for flat in order:
            i, j = divmod(int(flat), iou.shape[1])
            if iou[i, j] < iou_threshold:
                break
            if matched_ref[i] or matched_det[j]:
                continue
            matched_ref[i], matched_det[j], ious[i] = True, True, iou[i, j]
    return BoxMatch(ious=ious, matched_ref=matched_ref, matched_det=matched_det)


def center_targets(boxes: list[np.ndarray], grid_h: int, grid_w: int) -> CenterTargets:
    """Training targets on a (grid_h, grid_w) grid for a batch of per-frame normalised boxes."""
    b = len(boxes)
    heatmap = np.zeros((b, 1, grid_h, grid_w), np.float32)
    offset = np.zeros((b, 2, grid_h, grid_w), np.float32)
    log_size = np.zeros((b, 2, grid_h, grid_w), np.float32)
    mask = np.zeros((b, 1, grid_h, grid_w), np.float32)
    ys, xs = np.mgrid[0:grid_h, 0:grid_w]
    for i, frame_boxes in enumerate(boxes):
        frame_boxes = check_boxes(f"boxes[{i}]", frame_boxes)
        # Larger boxes are drawn last so that, where centres collide, the nearer vehicle wins.
        areas = (frame_boxes[:, 2] - frame_boxes[:, 0]) * (frame_boxes[:, 3] - frame_boxes[:, 1])
        for x1, y1, x2, y2 in frame_boxes[np.argsort(areas)]:
            w, h = (x2 - x1) * grid_w, (y2 - y1) * grid_h
            if w <= 0 or h <= 0:
                continue
            cx, cy = (x1 + x2) / 2 * grid_w, (y1 + y2) / 2 * grid_h
            ix, iy = min(int(cx), grid_w - 1), min(int(cy), grid_h - 1)
            sx, sy = max(w / 6.0, 0.5), max(h / 6.0, 0.5)
            g = np.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
            heatmap[i, 0] = np.maximum(heatmap[i, 0], g)
            offset[i, :, iy, ix] = (cx - ix, cy - iy)
            log_size[i, :, iy, ix] = (np.log(w), np.log(h))
            mask[i, 0, iy, ix] = 1.0
    return CenterTargets(
        heatmap=torch.from_numpy(heatmap),
        offset=torch.from_numpy(offset),
        log_size=torch.from_numpy(log_size),
        mask=torch.from_numpy(mask),
    )


def center_loss(
    heatmap_logits: torch.Tensor, offset: torch.Tensor, log_size: torch.Tensor, targets: CenterTargets
) -> torch.Tensor:
    """Penalty-reduced focal loss on the heatmap (alpha=2, beta=4) + L1 on offset and log size at centres."""
    p = torch.sigmoid(heatmap_logits).clamp(1e-4, 1 - 1e-4)
    gt = targets.heatmap.to(p.device)
    pos = gt.eq(1.0).float()
    neg_weight = (1 - gt) ** 4
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * neg_weight * (1 - pos)).sum()
    num_pos = pos.sum().clamp_min(1.0)
    mask = targets.mask.to(p.device)
    num_mask = mask.sum().clamp_min(1.0)
    off_loss = ((offset - targets.offset.to(p.device)).abs() * mask).sum() / num_mask
    size_loss = ((log_size - targets.log_size.to(p.device)).abs() * mask).sum() / num_mask
    return (pos_loss + neg_loss) / num_pos + off_loss + 0.5 * size_loss


@torch.no_grad()
def decode_detections(
    heatmap_logits: torch.Tensor,
    offset: torch.Tensor,
    log_size: torch.Tensor,
    score_threshold: float = 0.3,
    max_detections: int = 32,
) -> list[Detections]:
    """Peaks (3×3 local maxima above `score_threshold`) to normalised boxes, per frame."""
    scores = torch.sigmoid(heatmap_logits.float())  # (b, 1, gh, gw)
    peaks = scores == F.max_pool2d(scores, 3, stride=1, padding=1)
    scores = torch.where(peaks, scores, torch.zeros_like(scores))
    b, _, gh, gw = scores.shape
    flat = scores.flatten(1)  # (b, gh*gw)
    k = min(max_detections, flat.shape[1])
    top_scores, top_idx = flat.topk(k, dim=1)  # (b, k)
    out: list[Detections] = []
    for i in range(b):
        keep = top_scores[i] >= score_threshold
        idx = top_idx[i][keep]
        iy, ix = idx // gw, idx % gw
        cx = (ix.float() + offset[i, 0, iy, ix].float()) / gw
        cy = (iy.float() + offset[i, 1, iy, ix].float()) / gh
        w = torch.exp(log_size[i, 0, iy, ix].float().clamp(-5, 6)) / gw
        h = torch.exp(log_size[i, 1, iy, ix].float().clamp(-5, 6)) / gh
        xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).clamp(0, 1)  # (n, 4)
        out.append(Detections(xyxy=xyxy.cpu().numpy().astype(np.float32), scores=top_scores[i][keep].cpu().numpy()))
    return out
