"""Loss weights that make the latent cells under a frame's boxes count more in the denoising loss.

Box adherence of the image LDM is limited by where it draws cars: at the engine's settings the
detector finds 78% of requested boxes at IoU >= 0.1 but only 58% at IoU >= 0.5, and small cars
(8-12 px high, 2-3 latent cells) are missed most. Vehicles cover a small part of a frame, so the
plain loss spends most of its signal on road and sky. With `ImageLDMTrainConfig.box_weight` = w,
cells that overlap any of a frame's annotated boxes weigh w, the rest 1; `diffusion_loss` then
takes the weighted mean per sample (sum(w * err) / sum(w)), so the loss keeps its scale.
The weights come from the frame's true boxes, also when its boxes are dropped from the conditioning.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat


def latent_box_mask(boxes: torch.Tensor, box_mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """boxes (b, k, 4) normalised x1, y1, x2, y2 with box_mask (b, k) bool (padding False) ->
    (b, height, width) bool: cells of a height x width grid that overlap any real box."""
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or box_mask.shape != boxes.shape[:2]:
        raise ValueError(
            f"boxes must be (b, k, 4) with box_mask (b, k), got {tuple(boxes.shape)} and {tuple(box_mask.shape)}"
        )
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype)  # (h,)
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype)  # (w,)
    x1, y1, x2, y2 = (rearrange(boxes[..., i], "b k -> b k 1") for i in range(4))
    in_rows = ((rows + 1) / height > y1) & (rows / height < y2)  # (b, k, h)
    in_cols = ((cols + 1) / width > x1) & (cols / width < x2)  # (b, k, w)
    cells = rearrange(in_rows, "b k h -> b k h 1") & rearrange(in_cols, "b k w -> b k 1 w")  # (b, k, h, w)
    cells = cells & rearrange(box_mask.bool(), "b k -> b k 1 1")
    return cells.any(dim=1)  # (b, h, w)


def latent_box_weights(
    boxes: torch.Tensor, box_mask: torch.Tensor, height: int, width: int, box_weight: float
) -> torch.Tensor:
    """(b, 1, height, width) float loss weights: box_weight on cells under a box, 1 elsewhere."""
    if not box_weight >= 1.0:
        raise ValueError(f"box_weight={box_weight} must be >= 1 (1 = unweighted)")
    mask = latent_box_mask(boxes, box_mask, height, width).float()
    return 1.0 + (box_weight - 1.0) * repeat(mask, "b h w -> b 1 h w")
