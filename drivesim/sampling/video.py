"""Sampling clips from a video model: prediction with context guidance, CFG over actions, long rollouts
(interpolation over the same sampler: `drivesim.sampling.interpolation`).

All functions work over a conditional model callable ``model(z, tau, cond) -> output`` with
z (b, t, c, h, w), tau (b,) and a `VideoConditioning` (a `VideoUNet` is one), the image
model's `NoiseSchedule` and target, and take their randomness from a `torch.Generator`.

Known frames. The given frames (context frames for prediction, keyframes for
interpolation; mask m = 1) are *kept*, not predicted: at every DDIM step the denoiser's
output on a known frame is replaced by the output that is exact for the known clean latent
at the current z (`output_from_x0`), so DDIM moves those frames along a forward-noised
trajectory of the given latents (what the model saw in training) and returns them as given.
The returned clip holds the given latents at m = 1 bit for bit.

Guidance (`VideoGuidance`, sequential classifier-free guidance over named conditions in
the order context, actions, time_of_day, crowdedness, boxes; see
`drivesim.sampling.guidance.classifier_free_guidance`):
    f = f(∅) + s_context (f(c_S) − f(∅)) + s_actions (f(c_S, a) − f(c_S)) + ...
With only the context scale this is the paper's context guidance (Sec. 3.2)
f' = f(z) + s (f(z; c_S) − f(z)) with f(z) the model without context (S = 0). A scale of 1
leaves that condition unguided (no extra evaluation).

Context-noise augmentation: for models trained with it, the given latents handed to the
model as c_S are noised to the fixed small level `context_noise_level` (tau_c).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import Tensor

from drivesim.diffusion.conditioning import CONTRASTS, Conditioning
from drivesim.diffusion.context import check_mask, noise_context
from drivesim.diffusion.parameterization import Target, check_target, output_from_x0
from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.sampling.ddim import check_spacing, ddim_sample, start_latents
from drivesim.sampling.guidance import classifier_free_guidance, fraction_interval, interval_times

VideoModel = Callable[[Tensor, Tensor, VideoConditioning], Tensor]

GUIDANCE_ORDER: tuple[str, ...] = ("context", "actions", "time_of_day", "crowdedness", "boxes")


@dataclass
class VideoGuidance:
    """Guidance scales; 1.0 = unguided. `context` is s of context guidance (s >= 1).

    contrast: labels ("time_of_day", "crowdedness") guided against a neighbouring value of themselves instead
    of their absence (`drivesim.sampling.guidance`, contrast; one more evaluation each), as the first frames'
    crowdedness is (`ImageGuidance`).
    context_interval: (lo, hi) fractions of the diffusion times (0 = clean, 1 = pure noise) where
    the context scale acts; elsewhere the context is kept at scale 1 (conditional, unguided), and
    a step where nothing is guided costs one model evaluation instead of two. The default (0, 1)
    guides at every step. crowdedness_interval: the same for the crowdedness scale.
    """

    context: float = 1.0
    actions: float = 1.0
    time_of_day: float = 1.0
    crowdedness: float = 1.0
    boxes: float = 1.0
    context_interval: tuple[float, float] = (0.0, 1.0)
    contrast: tuple[str, ...] = ()
    crowdedness_interval: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.context < 1.0:
            raise ValueError(f"VideoGuidance.context={self.context}: context guidance needs s >= 1")
        self.context_interval = fraction_interval("VideoGuidance.context_interval", self.context_interval)
        self.crowdedness_interval = fraction_interval("VideoGuidance.crowdedness_interval", self.crowdedness_interval)
        self.contrast = tuple(self.contrast)
        bad = [n for n in self.contrast if n not in CONTRASTS]
        if bad:
            raise ValueError(f"VideoGuidance.contrast={list(self.contrast)}: {bad} have no contrast; allowed: "
                             f"{list(CONTRASTS)}")

    def contrasts(self, guided: Mapping[str, float]) -> tuple[str, ...]:
        """The contrasted names among the `guided` ones (a contrast on an unguided label does nothing)."""
        return tuple(n for n in self.contrast if n in guided)

    def intervals(self, guided: Mapping[str, float], num_steps: int) -> dict[str, tuple[int, int]]:
        """Guidance intervals in diffusion times 0..num_steps-1 of the `guided` names
        (`drivesim.sampling.guidance`): the context's and the crowdedness's, each where it is guided on part of
        the trajectory only."""
        own = {"context": self.context_interval, "crowdedness": self.crowdedness_interval}
        return {name: interval_times(fractions, num_steps) for name, fractions in own.items()
                if name in guided and fractions != (0.0, 1.0)}  # fmt: skip

    def scales(self) -> dict[str, float]:
        """The guided conditions (scale != 1) in `GUIDANCE_ORDER`."""
        return {name: float(getattr(self, name)) for name in GUIDANCE_ORDER if getattr(self, name) != 1.0}


@dataclass
class VideoSamplingConfig:
    """steps/eta/spacing of DDIM (`ddim.ddim_timesteps`), guidance scales, and tau_c for models
    trained with context noise."""

    steps: int = 20
    eta: float = 0.0
    guidance: VideoGuidance = field(default_factory=VideoGuidance)
    context_noise_level: int = 0
    spacing: str = "linspace"
    skip: int = 0  # leading DDIM steps left out: sampling starts from `sample_clip(init=...)` noised (SDEdit)

    def __post_init__(self) -> None:
        check_spacing(self.spacing)
        if not 0 <= self.skip < self.steps:
            raise ValueError(f"VideoSamplingConfig.skip={self.skip} must be in 0..steps-1={self.steps - 1}")
        if self.steps < 1:
            raise ValueError(f"VideoSamplingConfig.steps={self.steps} must be >= 1")
        if self.eta < 0:
            raise ValueError(f"VideoSamplingConfig.eta={self.eta} must be >= 0")
        if self.context_noise_level < 0:
            raise ValueError(f"VideoSamplingConfig.context_noise_level={self.context_noise_level} must be >= 0")


@dataclass(frozen=True)
class VideoSample:
    """latents: (b, t, c, h, w) scaled latents; known: (b, t) mask of frames that were given."""

    latents: Tensor
    known: Tensor


def keep_known_frames(
    model: Callable[[Tensor, Tensor], Tensor],
    known_latents: Tensor,
    mask: Tensor,
    schedule: NoiseSchedule,
    target: Target,
) -> Callable[[Tensor, Tensor], Tensor]:
    """A denoiser whose output on frames with mask 1 is exact for `known_latents` at z."""
    m = rearrange(mask.to(torch.bool), "b t -> b t 1 1 1")

    def denoiser(z: Tensor, tau: Tensor) -> Tensor:
        out = model(z, tau)
        if not bool(m.any()):
            return out
        alpha = broadcast_to_sample(schedule.alpha(tau).to(z.dtype), z)  # (b, 1, 1, 1, 1)
        sigma = broadcast_to_sample(schedule.sigma(tau).to(z.dtype), z)  # (b, 1, 1, 1, 1)
        exact = output_from_x0(known_latents.to(z.dtype), z, alpha, sigma, target)
        return torch.where(m, exact, out)

    return denoiser


def sample_clip(
    model: VideoModel,
    schedule: NoiseSchedule,
    target: Target,
    context_z: Tensor,
    context_mask: Tensor,
    generator: torch.Generator,
    actions: Tensor | None = None,
    image_cond: Conditioning | None = None,
    frame_rate: int | None = None,
    config: VideoSamplingConfig | None = None,
    progress: bool = False,
    x_T: Tensor | None = None,
    context_noise: Tensor | None = None,
    ego_speed: Tensor | None = None,
    warp_latents: Tensor | None = None,
    init: Tensor | None = None,
    eta_noise: Tensor | None = None,
) -> VideoSample:
    """Sample b clips of t frames given the frames marked in `context_mask`.

    context_z: (b, t, c, h, w) scaled latents; only frames with context_mask 1 are read.
    context_mask: (b, t) 1 = given frame (m_S); all zero samples unconditionally.
    actions: (b, t, 2) per-frame [steer, accel] or None (unknown).
    image_cond: labels/boxes, b rows (per clip) or b*t rows (per frame), or None (null).
    frame_rate: the interpolation model's flag, or None.
    x_T: (b, t, c, h, w) starting noise; default N(0, I) from `generator`.
    context_noise: (b, t, c, h, w) the eps of context-noise augmentation; default from `generator`.
    ego_speed: (b, t) ego speed (m/s) of each frame, read by a speed-conditioned model with the
        actions (`drivesim.rollout.ego_speed` integrates it from the accel); None = zeros.
    warp_latents: (b, t, c, h, w) the ego-motion warp of the last given frame, read by a model with
        `ego_warp` (`drivesim.diffusion.ego_warp.warp_context_latents`); None = zeros (no warp).
    init: (b, t, c, h, w) a guess of the clean frames, needed when `config.skip` > 0: sampling then
        starts from it noised with x_T to the skip-th DDIM time (`ddim.start_latents`).
    eta_noise: (steps - skip - 1, b, t, c, h, w) the noise of `config.eta` > 0 after each DDIM jump
        (`ddim.ddim_sample`); default from `generator`.
    (Passing x_T, context_noise and eta_noise lets each of a batch of independent rollouts use its own generator.)
    """
    cfg = config or VideoSamplingConfig()
    target = check_target(target)
    if context_z.ndim != 5:
        raise ValueError(f"context_z has shape {tuple(context_z.shape)}; expected (b, t, c, h, w)")
    b, t, c, h, w = context_z.shape
    check_mask(context_mask, b, t)
    device = context_z.device
    mask = context_mask.to(device=device, dtype=context_z.dtype)
    known = context_z * rearrange(mask, "b t -> b t 1 1 1")  # b t c h w, zero where not given
    given = known
    noise_level = None
    for name, value in (("x_T", x_T), ("context_noise", context_noise), ("init", init)):
        if value is not None and tuple(value.shape) != (b, t, c, h, w):
            raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {(b, t, c, h, w)}")
    if cfg.context_noise_level > 0:
        noise_level = torch.full((b,), cfg.context_noise_level, dtype=torch.long, device=device)
        if context_noise is None:
            noisy = noise_context(known, noise_level, schedule, generator)
        else:
            noisy = schedule.add_noise(known, context_noise.to(device=device, dtype=known.dtype), noise_level)
        given = noisy * rearrange(mask, "b t -> b t 1 1 1")
    cond = VideoConditioning.create(
        b,
        t,
        (c, h, w),
        image=image_cond,
        context_latents=given,
        context_mask=mask,
        context_noise_level=noise_level,
        actions=actions,
        frame_rate=frame_rate,
        device=device,
        ego_speed=ego_speed,
        warp_latents=warp_latents,
    )
    scales = cfg.guidance.scales()
    if not bool(mask.any()):
        scales.pop("context", None)  # nothing to guide towards
    if actions is None:
        scales.pop("actions", None)
    intervals = cfg.guidance.intervals(scales, schedule.num_steps)
    guided = classifier_free_guidance(model, cond, scales, mode="sequential", batched=True, intervals=intervals,
                                      contrasts=cfg.guidance.contrasts(scales))  # fmt: skip
    denoiser = keep_known_frames(guided, known, mask, schedule, target)
    if cfg.skip:
        if init is None:
            raise ValueError(f"VideoSamplingConfig.skip={cfg.skip} needs init, a guess of the clean frames")
        if x_T is None:
            x_T = torch.randn((b, t, c, h, w), generator=generator, device=generator.device).to(device)
        x_T = start_latents(init.to(device=device, dtype=context_z.dtype), x_T.to(device=device, dtype=context_z.dtype),
                            schedule, cfg.steps, cfg.skip, cfg.spacing)
    x0 = ddim_sample(
        denoiser,
        (b, t, c, h, w),
        schedule,
        cfg.steps,
        cfg.eta,
        generator,
        target=target,
        x_T=None if x_T is None else x_T.to(device=device, dtype=context_z.dtype),
        progress=progress,
        device=device,
        dtype=context_z.dtype,
        spacing=cfg.spacing,
        skip=cfg.skip,
        eta_noise=eta_noise,
    )
    m = rearrange(mask.to(torch.bool), "b t -> b t 1 1 1")
    return VideoSample(latents=torch.where(m, context_z, x0), known=mask)


@dataclass(frozen=True)
class RolloutClip:
    """One step of `rollout_clips`: the new frames (b, t - S, c, h, w) and the clip index."""

    index: int
    new_frames: Tensor


def rollout_clips(
    model: VideoModel,
    schedule: NoiseSchedule,
    target: Target,
    first_frames: Tensor,
    num_frames: int,
    num_clips: int,
    generator: torch.Generator,
    num_context: int = 2,
    actions: Callable[[int], Tensor | None] | None = None,
    image_cond: Conditioning | None = None,
    config: VideoSamplingConfig | None = None,
) -> Iterator[RolloutClip]:
    """Long-video prediction (Sec. 3.2): repeatedly predict a clip from the newest frames.

    first_frames: (b, s0, c, h, w) given start (e.g. one frame from the image model). Each
    clip of `num_frames` frames is conditioned on the last min(num_context, frames so far)
    frames; only the new frames are yielded, so memory does not grow with the rollout.
    actions: clip index -> (b, num_frames, 2) actions for that clip's frames, or None.
    """
    if not 1 <= num_context < num_frames:
        raise ValueError(f"num_context={num_context} must be in 1..num_frames-1={num_frames - 1}")
    if first_frames.ndim != 5 or first_frames.shape[1] < 1:
        raise ValueError(f"first_frames has shape {tuple(first_frames.shape)}; expected (b, s0 >= 1, c, h, w)")
    b, _, c, h, w = first_frames.shape
    context = first_frames[:, -num_context:]
    for index in range(num_clips):
        s = context.shape[1]
        clip = torch.zeros((b, num_frames, c, h, w), dtype=first_frames.dtype, device=first_frames.device)
        clip[:, :s] = context
        mask = torch.zeros((b, num_frames), dtype=first_frames.dtype, device=first_frames.device)
        mask[:, :s] = 1.0
        sample = sample_clip(
            model,
            schedule,
            target,
            clip,
            mask,
            generator,
            actions=actions(index) if actions is not None else None,
            image_cond=image_cond,
            config=config,
        )
        yield RolloutClip(index=index, new_frames=sample.latents[:, s:])
        context = sample.latents[:, -num_context:]
