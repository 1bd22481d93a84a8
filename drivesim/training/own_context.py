"""Own-rollout context for the prediction model (`VideoLDMTrainConfig.own_context` > 0).

A rollout feeds the prediction model its own keyframes as context, and their small errors
compound: in the steer env cars close ahead turn into blobs within seconds (docs/results.md, *Own-rollout
context*). Context-noise augmentation imitates those errors with Gaussian noise; this trains on
the errors themselves. The batch is loaded one keyframe longer than the model's window, with a
lead frame before it: `(b, 1 + t, ...)`. For a share `own_context` of the clips the model (the EMA
weights the env would run, no gradient) predicts the window's first t - 1 frames from the lead
frame alone, as the env's first step does, with the env's sampler (DDIM `steps`, trailing
spacing, no guidance, labels and actions but no boxes). Those predicted frames then stand in for
the real ones where the context mask gives frames; the frames to predict stay real. So the model
learns to continue from one- and two-step-old predictions towards the real future: to pull a
drifting rollout back to the data instead of carrying its error on (scheduled sampling, as
DAgger-style training of autoregressive world models does). With `own_context_chain` = L > 1 the
batch has L lead frames and the context is the end of the model's own L-call rollout from the first
(`predicted_chain`), so it carries a longer rollout's accumulated errors (the fading road marks of
docs/results.md, sessions 33-35), not one step's.
"""

from __future__ import annotations

import dataclasses

import torch
from einops import rearrange
from torch import Tensor

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.sampling.video import VideoGuidance, VideoModel, VideoSamplingConfig, sample_clip
from drivesim.training.clip_batch import ClipBatch
from drivesim.training.warp_setup import WarpFn


def frames_of(batch: ClipBatch, start: int, stop: int) -> ClipBatch:
    """Frames start..stop-1 of every clip: z (b, t, ...) -> (b, stop - start, ...); the per-frame
    image conditions (b t rows) are cut the same way."""
    t = batch.z.shape[1]
    if not 0 <= start < stop <= t:
        raise ValueError(f"frames {start}..{stop - 1} are not inside the batch's {t} frames")
    return _select(batch, slice(None), slice(start, stop))


def _select(batch: ClipBatch, clips: slice | Tensor, frames: slice) -> ClipBatch:
    """The clips `clips` (an index into b) and frames `frames` (a slice of t) of every field, the
    per-frame image conditions (b t rows) included."""
    t = batch.z.shape[1]

    def per_frame(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        framed = rearrange(x, "(b t) ... -> b t ...", t=t)[clips][:, frames]
        return rearrange(framed, "b t ... -> (b t) ...")

    image = Conditioning(**{f.name: per_frame(getattr(batch.image, f.name)) for f in dataclasses.fields(batch.image)})
    return ClipBatch(
        z=batch.z[clips][:, frames], image=image, actions=batch.actions[clips][:, frames],
        has_actions=batch.has_actions[clips], frame_rate=batch.frame_rate[clips],
        ego_speed=batch.ego_speed[clips][:, frames],
    )


@torch.no_grad()
def predicted_from_lead(
    model: VideoModel, batch: ClipBatch, schedule: NoiseSchedule, target: str, generator: torch.Generator,
    steps: int,
    warp: WarpFn | None = None,
) -> Tensor:
    """The model's prediction of frames 1..t-1 of `batch` (b, t, c, h, w) from its frame 0 alone:
    (b, t - 1, c, h, w). Labels and actions as the batch has them (actions where `has_actions`),
    no boxes: what the env gives the prediction model after its first frame; a `video.ego_warp` model
    is given the warp of frame 0 by the batch's ego speed, as the env gives it."""
    b, t = batch.z.shape[:2]
    mask = torch.zeros(b, t, device=batch.z.device)
    mask[:, 0] = 1.0
    return _sampled(model, batch, mask, schedule, target, generator, steps, warp)[:, 1:]


@torch.no_grad()
def predicted_chain(
    model: VideoModel, batch: ClipBatch, t: int, schedule: NoiseSchedule, target: str, generator: torch.Generator,
    steps: int,
    warp: WarpFn | None = None,
) -> Tensor:
    """The model's own rollout of `batch` (b, n, c, h, w) from its frame 0 in windows of t frames, as the
    env steps: the first call predicts frames 1..t-1 from frame 0 alone (`predicted_from_lead`), each
    further call frame j from the t - 1 predicted frames before it (mask [1, .., 1, 0]), n - t + 1 calls in
    all. Returns the last t - 1 frames of the rollout, (b, t - 1, c, h, w): with n = t, the lead prediction."""
    b, n = batch.z.shape[:2]
    if not 2 <= t <= n:
        raise ValueError(f"a chain of windows of {t} frames needs 2 <= t <= the batch's {n} frames")
    z = batch.z.clone()
    z[:, 1:t] = predicted_from_lead(model, frames_of(batch, 0, t), schedule, target, generator, steps, warp).to(z.dtype)
    mask = torch.ones(b, t, device=z.device)
    mask[:, -1] = 0.0
    for j in range(t, n):
        window = dataclasses.replace(frames_of(batch, j - t + 1, j + 1), z=z[:, j - t + 1 : j + 1])
        z[:, j] = _sampled(model, window, mask, schedule, target, generator, steps, warp)[:, -1].to(z.dtype)
    return z[:, n - t + 1 :]


def _sampled(
    model: VideoModel, batch: ClipBatch, mask: Tensor, schedule: NoiseSchedule, target: str,
    generator: torch.Generator, steps: int, warp: WarpFn | None,
) -> Tensor:
    """The env's sampler on `batch` (b, t, ...) with context mask (b, t): DDIM `steps`, trailing, no
    guidance, actions where given, no boxes, the warp of the last given frame: latents (b, t, c, h, w)."""
    given = rearrange(batch.has_actions, "b -> b 1 1").to(batch.actions.dtype)
    config = VideoSamplingConfig(steps=steps, guidance=VideoGuidance(), spacing="trailing")
    warped = None if warp is None else warp(batch.z, mask, batch.ego_speed, batch.has_actions)
    sample = sample_clip(
        model, schedule, target, batch.z, mask, generator, actions=batch.actions * given,
        image_cond=batch.image.nulled(["boxes"]), config=config, ego_speed=batch.ego_speed, warp_latents=warped,
    )
    return sample.latents


def own_context(
    model: VideoModel,
    batch: ClipBatch,
    mask: Tensor,
    schedule: NoiseSchedule,
    target: str,
    generator: torch.Generator,
    share: float,
    steps: int,
    warp: WarpFn | None = None,
    chain: int = 1,
) -> ClipBatch:
    """batch: (b, chain + t, ...) with `chain` lead frames; mask: (b, t) context mask of the window after them.
    Returns the window (b, t, ...) whose context frames are, for about `share` of the clips (drawn
    from `generator`), the model's own rollout from the first lead frame in `chain` sampling calls
    (`predicted_chain`; chain 1: the prediction from the lead frame alone; with `warp`: each call given the
    ego-motion warp of its last given frame, for a `video.ego_warp` model); the rest stays real."""
    b, t = mask.shape
    if chain < 1:
        raise ValueError(f"own context chain={chain} must be >= 1 (sampling calls from the first lead frame)")
    if batch.z.shape[:2] != (b, t + chain):
        raise ValueError(f"batch has {tuple(batch.z.shape[:2])} clips x frames; own context needs (b, chain + t) = "
                         f"({b}, {chain + t}): the window and its {chain} lead frame(s)")
    window = frames_of(batch, chain, chain + t)
    chosen = torch.rand(b, generator=generator, device=generator.device).to(mask.device) < share  # (b,)
    if share <= 0 or not bool((chosen & mask.bool().any(dim=1)).any()):
        return window
    rows = torch.nonzero(chosen).flatten()
    lead = _select(batch, rows, slice(0, chain + t - 1))  # the chosen clips' lead frames and the window's first t - 1
    made = predicted_chain(model, lead, t, schedule, target, generator, steps, warp)  # (k, t - 1, c, h, w)
    z = window.z.clone()
    use = rearrange(mask[rows, : t - 1].bool(), "k t -> k t 1 1 1")
    z[rows, : t - 1] = torch.where(use, made.to(z.dtype), z[rows, : t - 1])
    return dataclasses.replace(window, z=z)
