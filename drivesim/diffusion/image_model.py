"""The image LDM theta as one object: spatial UNet + noise schedule + target + latent geometry.

Stage 3 of DESIGN.md §1. `ImageLDM` is what training builds, what is saved as stage
"image_ldm" of a model folder (config layout of `drivesim.diffusion.video_loading`:
``{unet, schedule, target}``; `extra` holds ``latent_scale``, ``latent_size``,
``latent_channels`` and ``max_boxes``), and what scene composition samples from
(`drivesim.sampling.image.sample_image`).

Latents are *scaled* (unit variance, ``latent_scale * z`` of the autoencoder); divide by
``latent_scale`` before decoding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.parameterization import DiffusionLoss, Target, check_target, diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_loading import IMAGE_LDM_STAGE, load_image_ldm

IMAGE_STAGE = IMAGE_LDM_STAGE


@dataclass(frozen=True)
class LatentGeometry:
    """Shape and scale of the latents the model was trained on."""

    channels: int
    height: int
    width: int
    scale: float  # the autoencoder's latent scale factor (scaled = scale * z)


class ImageLDM(nn.Module):
    """Spatial UNet with its schedule, target and latent geometry; callable as model(z, tau, cond)."""

    def __init__(
        self,
        unet: SpatialUNet,
        schedule: NoiseSchedule,
        target: Target,
        latent: LatentGeometry,
        max_boxes: int = 16,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.schedule = schedule
        self.target = check_target(target)
        if latent.channels != unet.config.latent_channels:
            raise ValueError(
                f"latent channels {latent.channels} differ from UNetConfig.latent_channels "
                f"{unet.config.latent_channels}"
            )
        f = unet.config.downsample_factor
        if latent.height % f or latent.width % f:
            raise ValueError(f"latent size {latent.height}x{latent.width} must be divisible by {f}")
        if not latent.scale > 0:
            raise ValueError(f"latent scale={latent.scale} must be > 0")
        if max_boxes < 1:
            raise ValueError(f"max_boxes={max_boxes} must be >= 1")
        self.latent = latent
        self.max_boxes = max_boxes

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def forward(self, z: Tensor, tau: Tensor, cond: Conditioning | None) -> Tensor:
        """Raw prediction in the model's target: z (b, C, h, w), tau (b,) -> (b, C, h, w)."""
        return self.unet(z, tau, cond)

    def loss(
        self, x0: Tensor, cond: Conditioning | None, generator: torch.Generator, tau: Tensor | None = None
    ) -> DiffusionLoss:
        """Denoising loss (paper Eq. (1)) on scaled latents x0 (b, C, h, w)."""
        return diffusion_loss(self.unet, x0, cond, self.schedule, generator, self.target, tau=tau)

    def stage_config(self) -> dict[str, Any]:
        """The `config` entry of stage "image_ldm" (layout of `drivesim.diffusion.video_loading`)."""
        return {
            "unet": dataclasses.asdict(self.unet.config),
            "schedule": dataclasses.asdict(self.schedule.config),
            "target": self.target,
        }

    def stage_extra(self) -> dict[str, Any]:
        """What besides the config a model folder must record to sample and decode."""
        return {
            "latent_scale": float(self.latent.scale),
            "latent_size": [int(self.latent.height), int(self.latent.width)],
            "latent_channels": int(self.latent.channels),
            "max_boxes": int(self.max_boxes),
        }

    @classmethod
    def build(
        cls,
        unet: UNetConfig,
        schedule: ScheduleConfig,
        target: Target,
        latent: LatentGeometry,
        max_boxes: int = 16,
    ) -> ImageLDM:
        """A freshly initialised model."""
        return cls(SpatialUNet(unet), NoiseSchedule(schedule), target, latent, max_boxes)

    @classmethod
    def from_folder(cls, folder: str | Path, stage: str = IMAGE_STAGE) -> ImageLDM:
        """Load stage "image_ldm" of a model folder (eval mode, CPU)."""
        import yaml

        folder = Path(folder)
        loaded = load_image_ldm(folder, stage)
        entry = (yaml.safe_load((folder / "config.yaml").read_text()) or {}).get(stage) or {}
        extra = entry.get("extra") or {}
        missing = [k for k in ("latent_scale", "latent_size") if k not in extra]
        if missing:
            raise ValueError(f"{folder}/config.yaml [{stage}]: extra lacks {missing}; retrain or re-export the stage")
        height, width = (int(v) for v in extra["latent_size"])
        latent = LatentGeometry(
            channels=int(extra.get("latent_channels", loaded.unet_config.latent_channels)),
            height=height,
            width=width,
            scale=float(extra["latent_scale"]),
        )
        return cls(loaded.unet, loaded.schedule, loaded.target, latent, int(extra.get("max_boxes", 16))).eval()
