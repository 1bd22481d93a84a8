"""The image LDM theta as one object: spatial UNet + noise schedule + target + latent geometry.

Stage 3 of DESIGN.md §1. `ImageLDM` is what training builds, what is saved as stage
"image_ldm" of a model folder (config layout of `drivesim.diffusion.video_loading`:
``{unet, schedule, target}``; `extra` holds ``latent_scale``, ``latent_size``,
``latent_channels`` and ``max_boxes``), and what scene composition samples from.

Latents are *scaled* (unit variance, ``latent_scale * z`` of the autoencoder); divide by
``latent_scale`` before decoding. ``sample`` runs DDIM with classifier-free guidance over
the named conditions (`ImageGuidance`): a scale of 1 leaves a condition unguided (no extra
model evaluation), 0 drops it, > 1 pushes the sample towards it (away from the null label, or
with `contrast` away from a neighbouring label).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from drivesim.diffusion.conditioning import CONDITION_NAMES, CONTRASTS, Conditioning
from drivesim.diffusion.parameterization import DiffusionLoss, Target, check_target, diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_loading import IMAGE_LDM_STAGE, load_image_ldm
from drivesim.sampling.ddim import ddim_sample
from drivesim.sampling.guidance import classifier_free_guidance, fraction_interval, interval_times

IMAGE_STAGE = IMAGE_LDM_STAGE


@dataclass(frozen=True)
class ImageGuidance:
    """Classifier-free guidance scale per condition (applied in this order, sequentially).

    contrast: labels guided against their neighbouring value (`CONTRASTS`: e.g. medium traffic
    against low) instead of against the null label; see `drivesim.sampling.guidance`.
    box_interval: (lo, hi) fractions of the diffusion times (0 = clean, 1 = pure noise) where
    the box scale acts; elsewhere boxes are kept at scale 1 (conditional, unguided). The
    default (0, 1) guides at every step.
    """

    time_of_day: float = 1.0
    crowdedness: float = 1.0
    boxes: float = 1.0
    contrast: tuple[str, ...] = ()
    box_interval: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contrast", tuple(self.contrast))
        object.__setattr__(self, "box_interval", fraction_interval("ImageGuidance.box_interval", self.box_interval))
        bad = [n for n in self.contrast if n not in CONTRASTS]
        if bad or len(set(self.contrast)) != len(self.contrast):
            raise ValueError(
                f"ImageGuidance.contrast={list(self.contrast)} is not allowed; expected distinct names from "
                f"{list(CONTRASTS)}"
            )
        for f in dataclasses.fields(self):
            if f.name in ("contrast", "box_interval"):
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not -1.0 <= float(value) <= 50.0 or value != value:
                raise ValueError(f"ImageGuidance.{f.name}={value!r} is not allowed; expected a number in [-1, 50]")

    @classmethod
    def uniform(cls, scale: float) -> ImageGuidance:
        """The same scale for every condition."""
        return cls(time_of_day=scale, crowdedness=scale, boxes=scale)

    @classmethod
    def from_scales(
        cls,
        labels: float,
        boxes: float | None = None,
        crowdedness: float | None = None,
        crowdedness_contrast: bool = False,
        box_interval: tuple[float, float] | Sequence[float] = (0.0, 1.0),
    ) -> ImageGuidance:
        """`labels` for time of day; boxes and crowdedness default to it (None)."""
        return cls(
            time_of_day=labels,
            crowdedness=labels if crowdedness is None else crowdedness,
            boxes=labels if boxes is None else boxes,
            contrast=("crowdedness",) if crowdedness_contrast else (),
            box_interval=box_interval,
        )

    @classmethod
    def coerce(cls, guidance: ImageGuidance | float | Mapping[str, float] | None) -> ImageGuidance:
        """A float (all conditions), a mapping {name: scale}, an ImageGuidance or None (all 1)."""
        if guidance is None:
            return cls()
        if isinstance(guidance, ImageGuidance):
            return guidance
        if isinstance(guidance, (int, float)):
            return cls.uniform(float(guidance))
        if isinstance(guidance, Mapping):
            unknown = sorted(set(guidance) - set(CONDITION_NAMES))
            if unknown:
                raise ValueError(f"guidance names {unknown} are not allowed; expected some of {list(CONDITION_NAMES)}")
            return cls(**{k: float(v) for k, v in guidance.items()})
        raise ValueError(f"guidance={guidance!r}: expected a number, a mapping or ImageGuidance")

    def active(self, cond: Conditioning) -> dict[str, float]:
        """Scales that change the output: not 1, and the condition is given for some sample."""
        given = {
            "time_of_day": bool((cond.time_of_day >= 0).any()),
            "crowdedness": bool((cond.crowdedness >= 0).any()),
            "boxes": bool(cond.boxes_given.any()),
        }
        return {n: float(getattr(self, n)) for n in CONDITION_NAMES if getattr(self, n) != 1.0 and given[n]}

    def terms(
        self, cond: Conditioning, num_steps: int
    ) -> tuple[dict[str, float], list[str], dict[str, tuple[int, int]]]:
        """What `classifier_free_guidance` needs for `cond`: the active scales, the contrasted
        names among them and the guidance intervals in diffusion times 0..num_steps-1."""
        active = self.active(cond)
        return active, [n for n in self.contrast if n in active], self.intervals(active, num_steps)

    def intervals(self, active: Mapping[str, float], num_steps: int) -> dict[str, tuple[int, int]]:
        """Guidance intervals in diffusion times 0..num_steps-1 of the active names (see
        `drivesim.sampling.guidance`); empty when boxes are guided at every step or not at all."""
        if "boxes" not in active or self.box_interval == (0.0, 1.0):
            return {}
        return {"boxes": interval_times(self.box_interval, num_steps)}


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

    @torch.no_grad()
    def sample(
        self,
        cond: Conditioning,
        steps: int = 50,
        guidance: ImageGuidance | float | Mapping[str, float] | None = None,
        generator: torch.Generator | None = None,
        eta: float = 0.0,
        x_T: Tensor | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Scaled latents (b, C, h, w) for the conditions `cond` (one sample per row) with DDIM.

        Randomness (x_T and eta noise) only from `generator` (default: seed 0 on the CPU).
        """
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        scales = ImageGuidance.coerce(guidance)
        if cond.max_boxes > self.max_boxes:
            raise ValueError(f"{cond.max_boxes} boxes requested; this model takes at most {self.max_boxes}")
        device = self.device
        cond = cond.to(device)
        was_training = self.unet.training
        self.unet.eval()
        active, contrasts, intervals = scales.terms(cond, self.schedule.num_steps)
        denoiser = classifier_free_guidance(
            self.unet, cond, active, mode="sequential", contrasts=contrasts, intervals=intervals
        )
        shape = (cond.batch_size, self.latent.channels, self.latent.height, self.latent.width)
        if x_T is None:
            x_T = torch.randn(shape, generator=generator, device=generator.device).to(device)
        out = ddim_sample(
            denoiser, shape, self.schedule, steps, eta, generator, self.target, x_T=x_T, progress=progress
        )
        self.unet.train(was_training)
        return out

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
