"""Sampling the image LDM: classifier-free guidance over its named conditions (`ImageGuidance`) and DDIM
(`sample_image`), for first frames and scene composition.

A guidance scale of 1 leaves a condition unguided (no extra model evaluation), 0 drops it, > 1 pushes the
sample towards it (away from the null label, or with `contrast` away from a neighbouring label); boxes may be
guided on part of the trajectory only (`box_interval`). Randomness (x_T and eta noise) only from the generator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from drivesim.diffusion.conditioning import CONDITION_NAMES, CONTRASTS, Conditioning
from drivesim.diffusion.image_model import ImageLDM
from drivesim.sampling.ddim import ddim_sample
from drivesim.sampling.guidance import classifier_free_guidance, fraction_interval, interval_times


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


@torch.no_grad()
def sample_image(
    model: ImageLDM,
    cond: Conditioning,
    steps: int = 50,
    guidance: ImageGuidance | float | Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    x_T: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """Scaled latents (b, C, h, w) of `model` for the conditions `cond` (one sample per row) with DDIM.

    Randomness (x_T and eta noise) only from `generator` (default: seed 0 on the CPU).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    scales = ImageGuidance.coerce(guidance)
    if cond.max_boxes > model.max_boxes:
        raise ValueError(f"{cond.max_boxes} boxes requested; this model takes at most {model.max_boxes}")
    device = model.device
    cond = cond.to(device)
    was_training = model.unet.training
    model.unet.eval()
    active, contrasts, intervals = scales.terms(cond, model.schedule.num_steps)
    denoiser = classifier_free_guidance(
        model.unet, cond, active, mode="sequential", contrasts=contrasts, intervals=intervals
    )
    latent = model.latent
    shape = (cond.batch_size, latent.channels, latent.height, latent.width)
    if x_T is None:
        x_T = torch.randn(shape, generator=generator, device=generator.device).to(device)
    out = ddim_sample(denoiser, shape, model.schedule, steps, eta, generator, model.target, x_T=x_T, progress=progress)
    model.unet.train(was_training)
    return out
