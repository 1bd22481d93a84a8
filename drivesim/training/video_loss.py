"""The prediction and interpolation stages' training loss (`masked_loss`, paper Eq. (3)): the masked denoising
loss of one batch and its context mask, with the optional terms of `drivesim.training.video_ldm` (action forecast,
action consistency with a latent inverse-dynamics model, pose consistency), weighted as the config says."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from drivesim.diffusion.action_forecast import forecast_error
from drivesim.diffusion.box_loss_weight import latent_box_weights
from drivesim.diffusion.context import noise_context
from drivesim.diffusion.ego_warp import ground_rows
from drivesim.diffusion.latent_idm import context_pairs, pair_loss, real_pairs
from drivesim.diffusion.parameterization import DiffusionLoss, diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet import VideoUNet
from drivesim.training.clip_batch import ClipBatch
from drivesim.training.distributed import (
    unwrap,
)
from drivesim.training.pose_consistency import PoseConsistency
from drivesim.training.video_config import VideoTrainCommon
from drivesim.training.warp_setup import WarpFn


@dataclass(frozen=True)
class VideoLoss:
    """loss = diffusion.loss + forecast_weight * forecast (the forecaster's MSE, or None)
    + idm_fit (the inverse-dynamics model's own fit) + weight * consistency (or None)
    + pose_weight * pose (or None)."""

    loss: Tensor
    diffusion: DiffusionLoss
    forecast: Tensor | None
    idm_fit: Tensor | None = None
    consistency: Tensor | None = None
    pose: Tensor | None = None  # the pose-consistency term (drivesim.training.pose_consistency), unweighted


def masked_loss(
    model: Callable[[Tensor, Tensor, VideoConditioning], Tensor],
    batch: ClipBatch,
    mask: Tensor,
    schedule: NoiseSchedule,
    target: str,
    generator: torch.Generator,
    cfg: VideoTrainCommon,
    forecaster: VideoUNet | None = None,
    idm: nn.Module | None = None,
    consistency_weight: float = 0.0,
    warp: WarpFn | None = None,
    pose: PoseConsistency | None = None,
) -> VideoLoss:
    """The masked denoising loss of Eq. (3) for one batch and its context mask (b, t), plus
    the action forecast's MSE when `forecaster` (the unwrapped VideoUNet) has one, plus, with
    a latent inverse-dynamics model `idm`, its fit on real pairs and (weight > 0) the
    action-consistency loss of the model's clean estimates and forecasts. `warp(z, mask, speed,
    actions_given)` gives the ego-motion warp of the clean latents for a model with `ego_warp`; `pose` adds
    the pose consistency of the clean estimates, weighted by its weight."""
    b, t = batch.z.shape[:2]
    device = batch.z.device
    context = batch.z
    tau_c = torch.zeros((b,), dtype=torch.long, device=device)
    if cfg.video.context_noise and cfg.context_noise_max > 0:
        tau_c = torch.randint(0, cfg.context_noise_max + 1, (b,), generator=generator, device=generator.device)
        tau_c = tau_c.to(device)
        context = noise_context(batch.z, tau_c, schedule, generator)  # context-noise augmentation
    m = rearrange(mask, "b t -> b t 1 1 1")
    cond = VideoConditioning(
        image=batch.image,
        context_latents=context * m,
        context_mask=mask,
        context_noise_level=tau_c,
        actions=batch.actions,
        actions_given=batch.has_actions & cfg.video.use_actions,
        ego_speed=batch.ego_speed,
        frame_rate=batch.frame_rate,
        warp_latents=torch.zeros_like(batch.z),
    )
    if warp is not None:  # from the clean latents; nulling the actions below zeroes it again
        cond = dataclasses.replace(cond, warp_latents=warp(batch.z, mask, batch.ego_speed, cond.actions_given))
    u = torch.rand((4, b), generator=generator, device=generator.device).to(device)
    cond = cond.null_where(["actions"], u[0] < cfg.action_drop)
    cond = cond.null_where(["time_of_day"], u[1] < cfg.label_drop)
    cond = cond.null_where(["crowdedness"], u[2] < cfg.label_drop)
    cond = cond.null_where(["boxes"], u[3] < cfg.box_drop)
    weight = torch.ones_like(m) if cfg.loss_on_context else 1.0 - m  # b t 1 1 1
    if cfg.road_weight > 1.0:  # the road rows weigh more (VideoTrainCommon.road_weight)
        rows = ground_rows(batch.z.shape[-2], cfg.video.camera(), device).to(weight)  # h
        weight = weight * rearrange(1.0 + (cfg.road_weight - 1.0) * rows, "h -> 1 1 1 h 1")  # b t 1 h 1
    if cfg.box_weight > 1.0:  # the cells under each frame's vehicle boxes weigh more (VideoTrainCommon.box_weight)
        h, w = batch.z.shape[-2:]
        cells = latent_box_weights(batch.image.boxes, batch.image.box_mask, h, w, cfg.box_weight)  # (b t) 1 h w
        weight = weight * rearrange(cells.to(weight), "(b t) 1 h w -> b t 1 h w", b=b)
    diffusion = diffusion_loss(model, batch.z, cond, schedule, generator, target=target, weight=weight)
    loss, error, forecast, pose_error = diffusion.loss, None, None, None
    if pose is not None:
        alpha2 = schedule.alpha(diffusion.tau).to(batch.z.dtype) ** 2  # (b,)
        pose_error = pose.loss(batch.z, diffusion.x0, mask, alpha2)
        loss = loss + pose.weight * pose_error
    if forecaster is not None and forecaster.action_forecast is not None:
        forecast, valid = forecaster.forecast(cond, batch.z.dtype)
        error = forecast_error(forecast, valid, batch.z)
        loss = loss + cfg.forecast_weight * error
    if idm is None:
        return VideoLoss(loss, diffusion, error, pose=pose_error)
    fit = pair_loss(idm, real_pairs(batch.z, batch.actions, batch.has_actions))
    consistency = None
    if consistency_weight > 0:
        alpha2 = schedule.alpha(diffusion.tau).to(batch.z.dtype) ** 2  # (b,)
        made = context_pairs(batch.z, diffusion.x0, mask, batch.actions, cond.actions_given, alpha2)
        consistency = pair_loss(unwrap(idm), made, frozen=True)
        if forecast is not None and cfg.consistency_on_forecast:
            scored = context_pairs(batch.z, forecast, mask, batch.actions, cond.actions_given)
            consistency = consistency + pair_loss(unwrap(idm), scored, frozen=True)
        loss = loss + consistency_weight * consistency
    return VideoLoss(loss + fit, diffusion, error, fit, consistency, pose_error)
