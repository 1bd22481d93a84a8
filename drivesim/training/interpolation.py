"""Stage 6: temporal interpolation (`drivesim train stage=interpolation`, paper Sec. 3.3).

The masking of the prediction model with the in-between frames masked: in a window of
`num_frames` = k * factor + 1 frames the keyframes 0, factor, 2 factor, ... are given
(m = 1, c = (m ∘ z, m)) and the model learns the `factor - 1` frames between each pair
(the loss covers only those). One model serves several rates, told by a frame-rate flag
(`VideoUNetConfig.num_frame_rates`): flag r uses windows at source stride
`frame_stride * factor ** (R - 1 - r)` (R rates), so with factor 4 and R = 2 flag 0 is
T -> 4T (windows at stride 4 s) and flag 1 is 4T -> 16T (stride s). Each sample's flag
is drawn from `rate_probs`; with probability `context_drop` a sample gets no keyframes
(S = 0), so keyframe guidance is possible at sampling. Everything else (frozen theta,
EMA, resume, export as stage "interpolation") is `run_video_training`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import Tensor

from drivesim.autoencoder.latent_cache import collate_latent_windows
from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.context import check_context_probs, keyframe_mask
from drivesim.diffusion.video_loading import INTERPOLATION_STAGE, VideoWindow
from drivesim.diffusion.video_unet_config import VideoUNetConfig
from drivesim.training.clip_batch import ClipBatch, clip_batch
from drivesim.training.distributed import DistInfo, shard_batch_indices
from drivesim.training.video_config import VideoTrainCommon
from drivesim.training.video_ldm import VideoTrainResult, run_video_training, window_dataset


def _interpolation_video() -> VideoUNetConfig:
    return VideoUNetConfig(num_frame_rates=2, use_actions=False)


@dataclass
class InterpolationTrainConfig(VideoTrainCommon):
    run_dir: str = "runs/interpolation"
    video: VideoUNetConfig = field(default_factory=_interpolation_video)
    num_frames: int = 9  # k * factor + 1: 3 keyframes, 2 gaps of factor - 1 new frames
    factor: int = 4  # keyframe spacing: factor - 1 new frames between two keyframes
    frame_stride: int = 1  # source stride of the finest rate (the last flag)
    rate_probs: list[float] = field(default_factory=lambda: [0.5, 0.5])
    context_drop: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.factor < 2 or (self.num_frames - 1) % self.factor or self.num_frames < self.factor + 1:
            raise ValueError(
                f"InterpolationTrainConfig: num_frames={self.num_frames} must be k * factor + 1 "
                f"(k >= 1) with factor={self.factor} >= 2"
            )
        check_context_probs(self.rate_probs)
        if len(self.rate_probs) != self.video.num_frame_rates:
            raise ValueError(
                f"InterpolationTrainConfig.rate_probs has {len(self.rate_probs)} entries; "
                f"video.num_frame_rates={self.video.num_frame_rates} must match"
            )
        if self.frame_stride < 1:
            raise ValueError(f"InterpolationTrainConfig.frame_stride={self.frame_stride} must be >= 1")
        if not 0.0 <= self.context_drop <= 1.0:
            raise ValueError(f"InterpolationTrainConfig.context_drop={self.context_drop} must be in [0, 1]")

    def stride_of_rate(self, rate: int) -> int:
        """Source stride of the windows of frame-rate flag `rate`."""
        return self.frame_stride * self.factor ** (len(self.rate_probs) - 1 - rate)


def interpolation_mask(batch: int, num_frames: int, factor: int, drop: Tensor) -> Tensor:
    """Keyframe mask (b, t), all zero for samples where `drop` (b,) is True."""
    mask = keyframe_mask(batch, num_frames, factor, drop.device)  # b t
    return mask * rearrange((~drop).float(), "b -> b 1")


def train(cfg: InterpolationTrainConfig, after_step: Callable[[int], None] | None = None) -> VideoTrainResult:
    """Train (or resume) the interpolation model and export its EMA as stage "interpolation"."""
    datasets = [window_dataset(cfg, cfg.stride_of_rate(r)) for r in range(len(cfg.rate_probs))]
    for r, ds in enumerate(datasets):
        stride = cfg.stride_of_rate(r)
        print(f"interpolation: rate {r}: {len(ds)} windows of {cfg.num_frames} frames at stride {stride}")
    probs = torch.tensor(cfg.rate_probs, dtype=torch.float64)

    def make_batch(info: DistInfo, step: int, generator: torch.Generator) -> tuple[ClipBatch, Tensor]:
        local = cfg.batch_size // info.world_size
        rates = torch.multinomial(probs, local, replacement=True, generator=generator)  # (b,)
        parts: list[ClipBatch] = []
        for r, ds in enumerate(datasets):
            count = int((rates == r).sum())
            if count == 0:
                continue
            indices = shard_batch_indices(len(ds), cfg.batch_size, step, info, cfg.seed + 7919 * r)
            indices = (indices * count)[:count]  # a tiny dataset may hold fewer windows than asked
            windows = collate_latent_windows([ds[i] for i in indices])
            parts.append(clip_batch(windows, cfg.use_boxes, frame_rate=r))
        batch = ClipBatch(
            z=torch.cat([p.z for p in parts]),
            image=Conditioning.cat([p.image for p in parts]),
            actions=torch.cat([p.actions for p in parts]),
            has_actions=torch.cat([p.has_actions for p in parts]),
            frame_rate=torch.cat([p.frame_rate for p in parts]),
            ego_speed=torch.cat([p.ego_speed for p in parts]),
        )
        drop = torch.rand(local, generator=generator) < cfg.context_drop
        return batch, interpolation_mask(local, cfg.num_frames, cfg.factor, drop)

    window = VideoWindow(num_frames=cfg.num_frames, frame_stride=cfg.frame_stride, keyframe_spacing=cfg.factor)
    extra = {"rate_strides": [cfg.stride_of_rate(r) for r in range(len(cfg.rate_probs))]}
    return run_video_training(cfg, INTERPOLATION_STAGE, window, make_batch, after_step, stage_extra=extra)
