"""Clips for the temporal decoder's training and evaluation (`drivesim.training.temporal_decoder`):
random pixel windows of a frame bank with their box masks, the held-out evaluation clips, the frozen
encoder's latents, and the video quality (PSNR, SSIM, flicker) of a decoded clip."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from drivesim.autoencoder.frame_bank import ClipFrames
from drivesim.autoencoder.metrics import flicker, psnr, ssim
from drivesim.autoencoder.model import Autoencoder


@dataclass(frozen=True)
class VideoQuality:
    psnr: float  # dB, mean over frames
    ssim: float
    flicker: float  # mean |d x_hat - d x| on a 0..255 scale


@dataclass(frozen=True)
class ClipBatch:
    video: torch.Tensor  # (b, t, 3, H, W) in [-1, 1]
    masks: torch.Tensor | None  # (b, t, H, W) bool, inside annotated boxes; None when the bank has none


def sample_clips(
    bank: ClipFrames, batch_size: int, num_frames: int, generator: torch.Generator, hflip: bool
) -> ClipBatch:
    """Random windows of consecutive frames (and their box masks, flipped alike, when the bank has them)."""
    lengths = bank.offsets[1:] - bank.offsets[:-1]
    usable = torch.nonzero(lengths >= num_frames)[:, 0]  # (clips,)
    if usable.numel() == 0:
        raise ValueError(f"no clip has num_frames={num_frames} frames (longest: {int(lengths.max())})")
    clips, masks = [], []
    for _ in range(batch_size):
        c = int(usable[torch.randint(0, usable.numel(), (1,), generator=generator)])
        start = int(torch.randint(0, int(lengths[c]) - num_frames + 1, (1,), generator=generator))
        clip = bank.clip(c)[start : start + num_frames]  # t h w c
        mask = bank.clip_masks(c)[start : start + num_frames] if bank.masks is not None else None  # t h w
        if hflip and bool(torch.rand(1, generator=generator) < 0.5):
            clip = clip.flip(2)
            mask = mask.flip(2) if mask is not None else None
        clips.append(clip)
        masks.append(mask)
    video = torch.stack(clips)  # b t h w c
    video = rearrange(video, "b t h w c -> b t c h w").contiguous().float() / 127.5 - 1.0
    return ClipBatch(video, torch.stack(masks) if bank.masks is not None else None)


def evaluation_clips(bank: ClipFrames, count: int, num_frames: int) -> torch.Tensor:
    """The first `num_frames` frames of up to `count` clips, (n, t, 3, H, W) in [-1, 1]."""
    clips = [bank.clip(i)[:num_frames] for i in range(bank.num_clips) if bank.clip(i).shape[0] >= num_frames]
    if not clips:
        raise ValueError(f"no held-out clip has {num_frames} frames")
    video = torch.stack(clips[:count])  # n t h w c
    return rearrange(video, "n t h w c -> n t c h w").contiguous().float() / 127.5 - 1.0


@torch.no_grad()
def video_quality(decoded: torch.Tensor, video: torch.Tensor) -> VideoQuality:
    frames_hat = rearrange(decoded, "b t c h w -> (b t) c h w")
    frames = rearrange(video, "b t c h w -> (b t) c h w")
    return VideoQuality(
        psnr=float(psnr(frames_hat, frames).mean()),
        ssim=float(ssim(frames_hat, frames).mean()),
        flicker=float(flicker(decoded, video).mean()),
    )


@torch.no_grad()
def encode_clips(autoencoder: Autoencoder, video: torch.Tensor) -> torch.Tensor:
    """Posterior means of (b, t, 3, H, W) -> unscaled latents (b, t, C, h, w)."""
    return autoencoder.encode_video(video, scaled=False)
