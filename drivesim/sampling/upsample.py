"""Upsampling a low-res video with the diffusion upsampler, chunked over time in constant memory.

`upsample_video(model, low_res, steps, generator, tau_gamma)` turns `b t 3 h w` frames in
[-1, 1] into `b t 3 (s h) (s w)` frames (s = the model's scale) with DDIM. The model is a
`VideoUpsamplerModel`: the frame-by-frame `Upsampler` or the `TemporalUpsampler`.

Conditioning (Eq. (5)): every frame's low-res frame is upsampled bilinearly and noised to the
fixed small level tau_gamma, c = alpha_gamma * up(x_low) + sigma_gamma * eps, and tau_gamma is
handed to the model.

Chunks. The video is processed `chunk_frames` frames at a time; consecutive chunks of a
temporal model share `overlap` frames. The shared frames are already upsampled and are *kept*:
at every DDIM step the model output on them is replaced by the output that is exact for the
known clean frame at the current z (`output_from_x0`, as for context frames in
`drivesim.sampling.video`), so the new frames of the chunk are denoised jointly with, and
consistent to, the end of the previous chunk. Memory depends on `chunk_frames`, not on t
(`iter_upsampled_chunks` yields the frames chunk by chunk for streaming). The frame-by-frame
model couples no frames, so it uses no overlap.

Randomness: one seed is drawn from `generator`; frame f's starting noise and conditioning
noise come from a generator seeded with seed + f, so with eta = 0 the result does not depend
on the chunking for the frame-by-frame model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from drivesim.diffusion.parameterization import Target, output_from_x0
from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample
from drivesim.diffusion.upsampler import IMAGE_CHANNELS, Upsampler
from drivesim.sampling.ddim import ddim_sample


class VideoUpsamplerModel(Protocol):
    """What the sampler needs: `Upsampler` and `TemporalUpsampler` both provide it."""

    is_temporal: bool

    @property
    def schedule(self) -> NoiseSchedule: ...

    @property
    def target(self) -> Target: ...

    @property
    def scale(self) -> int: ...

    @property
    def image_model(self) -> Upsampler: ...

    def forward_video(self, z: Tensor, tau: Tensor, cond: Tensor, noise_level: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class UpsampleChunk:
    """Frames [start, stop) are denoised together; the first `known` of them are already done."""

    start: int
    stop: int
    known: int


def plan_chunks(num_frames: int, chunk_frames: int, overlap: int) -> list[UpsampleChunk]:
    """Chunks of `chunk_frames` frames, each after the first sharing `overlap` frames with the last."""
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be >= 1")
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames={chunk_frames} must be >= 1")
    if not 0 <= overlap < chunk_frames:
        raise ValueError(f"overlap={overlap} must be in 0..chunk_frames-1 = 0..{chunk_frames - 1}")
    chunks = [UpsampleChunk(0, min(chunk_frames, num_frames), 0)]
    while chunks[-1].stop < num_frames:
        start = chunks[-1].stop - overlap
        chunks.append(UpsampleChunk(start, min(start + chunk_frames, num_frames), overlap))
    return chunks


def _frame_noise(seed: int, frame: int, shape: tuple[int, ...], like: Tensor, device: torch.device) -> Tensor:
    """Two draws (start noise, conditioning noise) of `shape` for one frame: (2, *shape)."""
    g = torch.Generator(device=device).manual_seed(seed + frame)
    return torch.randn((2, *shape), generator=g, device=device, dtype=like.dtype).to(like.device)


def _check_inputs(model: VideoUpsamplerModel, low_res: Tensor, steps: int, tau_gamma: int | None) -> int:
    if low_res.ndim != 5 or low_res.shape[2] != IMAGE_CHANNELS:
        raise ValueError(f"low_res has shape {tuple(low_res.shape)}; expected (b, t, {IMAGE_CHANNELS}, h, w)")
    if not low_res.is_floating_point():
        raise ValueError(f"low_res must be float in [-1, 1], got dtype {low_res.dtype}")
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    level = model.image_model.config.sample_noise_level if tau_gamma is None else int(tau_gamma)
    if not 0 <= level < model.schedule.num_steps:
        raise ValueError(f"tau_gamma={tau_gamma} is not allowed; expected 0..{model.schedule.num_steps - 1}")
    return level


@torch.no_grad()
def iter_upsampled_chunks(
    model: VideoUpsamplerModel,
    low_res: Tensor,
    steps: int,
    generator: torch.Generator,
    tau_gamma: int | None = None,
    chunk_frames: int = 8,
    overlap: int = 2,
    eta: float = 0.0,
    progress: bool = False,
) -> Iterator[Tensor]:
    """Yield the upsampled frames chunk by chunk: (b, n_new, 3, s h, s w) in [-1, 1], in order."""
    level = _check_inputs(model, low_res, steps, tau_gamma)
    b, t, c, h, w = low_res.shape
    s = model.scale
    frame_shape = (b, c, s * h, s * w)
    chunks = plan_chunks(t, chunk_frames, overlap if model.is_temporal else 0)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    noise_level = torch.full((b,), level, dtype=torch.long, device=low_res.device)  # (b,)
    schedule, target = model.schedule, model.target
    known: Tensor | None = None  # (b, o, 3, H, W) upsampled frames shared with the previous chunk
    kept_noise: Tensor | None = None  # (2, b, o, 3, H, W) their start and conditioning noise
    for chunk in tqdm(chunks, desc="upsample", disable=not progress, leave=False):
        new_frames = range(chunk.start + chunk.known, chunk.stop)
        fresh = [_frame_noise(seed, f, frame_shape, low_res, generator.device) for f in new_frames]
        noise = torch.stack(fresh, dim=2)  # (2, b, n_new, 3, H, W)
        if chunk.known:
            noise = torch.cat([kept_noise, noise], dim=2)  # (2, b, n, 3, H, W)
        cond = model.image_model.augment(low_res[:, chunk.start : chunk.stop], noise_level, noise[1])  # Eq. (5)
        given = known if chunk.known else None

        def denoiser(z: Tensor, tau: Tensor, cond: Tensor = cond, given: Tensor | None = given) -> Tensor:
            out = model.forward_video(z, tau, cond, noise_level)  # (b, n, 3, H, W)
            if given is None:
                return out
            o = given.shape[1]
            alpha = broadcast_to_sample(schedule.alpha(tau).to(z.dtype), given)  # (b, 1, 1, 1, 1)
            sigma = broadcast_to_sample(schedule.sigma(tau).to(z.dtype), given)  # (b, 1, 1, 1, 1)
            exact = output_from_x0(given, z[:, :o], alpha, sigma, target)  # (b, o, 3, H, W)
            return torch.cat([exact, out[:, o:]], dim=1)  # (b, n, 3, H, W)

        x0 = ddim_sample(
            denoiser, tuple(noise[0].shape), schedule, steps, eta, generator, target=target, x_T=noise[0]
        ).clamp(-1.0, 1.0)  # (b, n, 3, H, W)
        if overlap and model.is_temporal:
            keep = min(overlap, x0.shape[1])
            known, kept_noise = x0[:, -keep:], noise[:, :, -keep:]
        yield x0[:, chunk.known :]


def upsample_video(
    model: VideoUpsamplerModel,
    low_res: Tensor,
    steps: int,
    generator: torch.Generator,
    tau_gamma: int | None = None,
    chunk_frames: int = 8,
    overlap: int = 2,
    eta: float = 0.0,
    progress: bool = False,
) -> Tensor:
    """low_res (b, t, 3, h, w) in [-1, 1] -> hi-res (b, t, 3, s h, s w) in [-1, 1] (see the module doc).

    tau_gamma: the fixed noise-augmentation level (default: the model's `sample_noise_level`).
    """
    parts = iter_upsampled_chunks(model, low_res, steps, generator, tau_gamma, chunk_frames, overlap, eta, progress)
    return torch.cat(list(parts), dim=1)  # (b, t, 3, H, W)
