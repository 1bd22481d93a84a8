"""The ego-motion warp in training (`video.ego_warp`): its frame interval from the data, and the warp
function the masked loss calls, with model_dir's autoencoder (`drivesim.diffusion.ego_warp`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.autoencoder.loading import TEMPORAL_DECODER_STAGE, load_autoencoder, load_temporal_decoder
from drivesim.diffusion.ego_warp import warp_context_latents
from drivesim.training.video_config import VideoLDMTrainConfig

# warp(clean latents (b, t, c, h, w), mask (b, t), ego speed (b, t), actions_given (b,)) -> warp latents
WarpFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def with_warp_interval(cfg: VideoLDMTrainConfig, rates: set[float]) -> VideoLDMTrainConfig:
    """cfg with `video.warp_interval` = frame_stride / fps of the data (one frame rate in the cache);
    a different non-zero interval already in the config is an error."""
    if len(rates) != 1:
        raise ValueError(f"video.ego_warp needs clips of one frame rate; latent cache {cfg.latent_cache} has {rates}")
    interval = cfg.frame_stride / rates.pop()
    if cfg.video.warp_interval and abs(cfg.video.warp_interval - interval) > 1e-6:
        raise ValueError(
            f"video.warp_interval={cfg.video.warp_interval} s, but frame_stride={cfg.frame_stride} in this cache "
            f"is {interval:.6f} s; leave video.warp_interval at 0 to take it from the data"
        )
    return dataclasses.replace(cfg, video=dataclasses.replace(cfg.video, warp_interval=interval))


def frame_warp(cfg: VideoLDMTrainConfig, latent_scale: float) -> WarpFn:
    """The ego-motion warp with model_dir's encoder and temporal decoder (the image decoder if it has
    none), which must be the autoencoder the latent cache was made with (same latent scale)."""
    folder = Path(cfg.model_dir)
    ae = load_autoencoder(folder)
    if abs(float(ae.latent_scale) - latent_scale) > 1e-4 * max(1.0, latent_scale):
        raise ValueError(
            f"video.ego_warp: model_dir {folder} has latent scale {float(ae.latent_scale):.5f} but latent cache "
            f"{cfg.latent_cache} {latent_scale:.5f}; the warp decodes and encodes with model_dir's autoencoder"
        )
    td = load_temporal_decoder(folder) if (folder / f"{TEMPORAL_DECODER_STAGE}.safetensors").is_file() else None
    codec = FrameCodec(ae, td)
    interval, camera = cfg.video.warp_interval, cfg.video.camera()

    def warp(z: Tensor, mask: Tensor, speed: Tensor, actions_given: Tensor) -> Tensor:
        for net in (ae, td):
            if net is not None:
                net.to(z.device)  # the batch's device (a no-op after the first step)
        return warp_context_latents(z, mask, speed, actions_given, interval, camera, codec)

    return warp
