"""The typed latent batch of the video stages (prediction, interpolation): clips of scaled
latents with per-frame image conditions, actions and a frame-rate flag, built from the latent
cache's `LatentWindowBatch`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.autoencoder.latent_cache import LatentWindowBatch
from drivesim.diffusion.conditioning import Conditioning


@dataclass(frozen=True)
class ClipBatch:
    """A typed latent batch: z (b, t, c, h, w) scaled latents; image (b t rows, per-frame
    boxes); actions (b, t, 2) with has_actions (b,); frame_rate (b,) long, -1 = none;
    ego_speed (b, t) m/s (zeros where the data has none)."""

    z: Tensor
    image: Conditioning
    actions: Tensor
    has_actions: Tensor
    frame_rate: Tensor
    ego_speed: Tensor

    def to(self, device: torch.device) -> ClipBatch:
        return ClipBatch(
            self.z.to(device), self.image.to(device), self.actions.to(device),
            self.has_actions.to(device), self.frame_rate.to(device), self.ego_speed.to(device),
        )


def clip_batch(windows: LatentWindowBatch, use_boxes: bool, frame_rate: int = -1) -> ClipBatch:
    """Adapter from the latent cache's `LatentWindowBatch` (per-frame boxes, labels, actions)."""
    b, t = windows.latents.shape[:2]
    boxes_given = windows.boxes_labelled & use_boxes  # (b, t)
    image = Conditioning(
        time_of_day=repeat(windows.time_of_day.long(), "b -> (b t)", t=t),
        crowdedness=repeat(windows.crowdedness.long(), "b -> (b t)", t=t),
        boxes=rearrange(windows.boxes.float(), "b t n k -> (b t) n k"),
        box_classes=rearrange(windows.box_classes.long(), "b t n -> (b t) n"),
        box_mask=rearrange(windows.box_mask & rearrange(boxes_given, "b t -> b t 1"), "b t n -> (b t) n"),
        boxes_given=rearrange(boxes_given, "b t -> (b t)"),
    )
    return ClipBatch(
        z=windows.latents.float(),
        image=image,
        actions=windows.actions.float().clamp(-1.0, 1.0),
        has_actions=windows.has_actions.bool(),
        frame_rate=torch.full((b,), frame_rate, dtype=torch.long),
        ego_speed=windows.ego_speed.float().clamp_min(0.0),
    )
