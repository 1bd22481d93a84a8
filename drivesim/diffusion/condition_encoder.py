"""Turns a `Conditioning` into what the UNet consumes.

- labels -> one vector added to the timestep embedding (`LabelEmbedding`, null row for -1);
- boxes -> cross-attention tokens (`BoxEmbedding`, "tokens" / "both");
- boxes -> a layout map at latent resolution, per-class coverage plus one "boxes given"
  plane, concatenated to the UNet input ("layout" / "both").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.diffusion.conditioning import Conditioning, rasterize_boxes
from drivesim.nn.embeddings import BoxEmbedding, BoxTokens, LabelEmbedding, check_labels

BoxConditioning = Literal["tokens", "layout", "both"]
BOX_CONDITIONING: tuple[str, ...] = ("tokens", "layout", "both")


@dataclass(frozen=True)
class EncodedConditioning:
    """label_embedding (b, emb_dim); box_tokens or None; layout (b, c_layout, h, w) or None."""

    label_embedding: Tensor
    box_tokens: BoxTokens | None
    layout: Tensor | None


class ConditionEncoder(nn.Module):
    def __init__(
        self,
        emb_dim: int,
        context_dim: int,
        num_time_of_day: int,
        num_crowdedness: int,
        num_box_classes: int,
        box_conditioning: BoxConditioning,
        fourier_frequencies: int = 8,
    ) -> None:
        super().__init__()
        if box_conditioning not in BOX_CONDITIONING:
            raise ValueError(
                f"box_conditioning={box_conditioning!r} is not allowed; expected one of {BOX_CONDITIONING}"
            )
        self.box_conditioning = box_conditioning
        self.num_box_classes = num_box_classes
        self.time_of_day = LabelEmbedding("time_of_day", num_time_of_day, emb_dim)
        self.crowdedness = LabelEmbedding("crowdedness", num_crowdedness, emb_dim)
        self.boxes = (
            BoxEmbedding(num_box_classes, context_dim, fourier_frequencies) if self.uses_tokens else None
        )

    @property
    def uses_tokens(self) -> bool:
        return self.box_conditioning in ("tokens", "both")

    @property
    def uses_layout(self) -> bool:
        return self.box_conditioning in ("layout", "both")

    @property
    def layout_channels(self) -> int:
        """Channels the layout adds to the UNet input: one per box class plus "boxes given"."""
        return self.num_box_classes + 1 if self.uses_layout else 0

    def forward(
        self, cond: Conditioning | None, batch: int, height: int, width: int, device: torch.device
    ) -> EncodedConditioning:
        """cond None means every condition null."""
        if cond is None:
            cond = Conditioning.null(batch, device)
        if cond.batch_size != batch:
            raise ValueError(f"Conditioning batch {cond.batch_size} differs from latent batch {batch}")
        cond = cond.to(device)
        label_embedding = self.time_of_day(cond.time_of_day) + self.crowdedness(cond.crowdedness)  # (b, emb)
        real = cond.box_mask & rearrange(cond.boxes_given, "b -> b 1")  # (b, n)
        check_labels("box_classes", torch.where(real, cond.box_classes, -1), self.num_box_classes)
        tokens = None
        if self.boxes is not None:
            tokens = self.boxes(cond.boxes, cond.box_classes, cond.box_mask, cond.boxes_given)
        layout = None
        if self.uses_layout:
            dtype = label_embedding.dtype
            per_class = rasterize_boxes(
                cond.boxes.to(dtype), cond.box_classes, real, self.num_box_classes, height, width
            )  # (b, classes, h, w)
            given = repeat(cond.boxes_given.to(dtype), "b -> b 1 h w", h=height, w=width)  # (b, 1, h, w)
            layout = torch.cat([per_class, given], dim=1)  # (b, classes + 1, h, w)
        return EncodedConditioning(label_embedding=label_embedding, box_tokens=tokens, layout=layout)
