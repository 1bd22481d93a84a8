"""Stage 4-5: the Video LDM prediction model (`drivesim train stage=video_ldm`).

The image LDM of `model_dir` (stage "image_ldm") is wrapped in a `VideoUNet`; theta stays
frozen and only the temporal layers phi and what feeds them (context encoder, action,
noise-level and frame-rate embeddings, blenders) train, with the image model's schedule
and target (paper Eq. (2)). Prediction model (Eq. (3)): per clip S ~ p_S context frames
(`context_probs`), c_S = (m_S ∘ z, m_S); the loss covers the frames to predict (and the
given ones too with `loss_on_context`; the rows that see the road weigh `road_weight`).
Conditions are dropped independently for classifier-free guidance: actions (`action_drop`),
each label (`label_drop`), boxes (`box_drop`); S = 0 is the unconditional model of context guidance.

Action forecast (`video.action_forecast`): the forecaster trains on its own MSE against the
true latents (weight `forecast_weight`), added to the denoising loss. `init_from` starts a
run from another model folder's stage weights (e.g. the bundled model), the new forecast
modules from their initialisation (the model then starts exactly as the one it came from).

Action consistency (`action_consistency_weight` > 0; `drivesim.diffusion.latent_idm`): a latent
inverse-dynamics model g is fit on real latent pairs of each batch (its own optimiser, saved in
the run's checkpoints, not in the exported stage), and from step `action_consistency_start` on
the model's clean estimates (weighted by alpha(tau)^2) and action forecasts are scored by
g's detached weights against the actions the model was told.

Pose consistency (`pose_weight` > 0; `drivesim.training.pose_consistency`): the frozen pose heads of
`pose_from` read each predicted frame's clean estimate beside its true predecessor, and the term asks for the
pose they read from the true frame.

Ablations (config): `video.temporal_layers` "attention" | "attention+conv3d";
`video.context_noise` with `context_noise_max` (tau_c ~ U{0..max} noises the context);
`from_scratch` (theta randomly initialised and trained end to end). Beyond the paper, `theta_lr` > 0
fine-tunes theta from the image model beside phi at lr * theta_lr (the stage carries its own theta). Context guidance
on/off is a sampling switch (`drivesim.sampling.video.VideoGuidance.context`).

The loss of one batch (Eq. (3) and the terms above) is `drivesim.training.video_loss.masked_loss`.

Training runs on windows of a latent cache (`drivesim data latents`), one code path for 1
or N processes (torchrun), is resumable (RunCheckpointer; the run's randomness per step is
seeded by (seed, step, rank)), logs losses (LossLog + PNG) and exports the EMA model as
stage "video_ldm" of `model_dir`. The shared loop is `run_video_training`; the
interpolation stage (`drivesim.training.interpolation`) uses it with keyframe masks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from drivesim.autoencoder.latent_cache import (
    LatentWindowConfig,
    LatentWindowDataset,
    collate_latent_windows,
)
from drivesim.diffusion.blend_residual import BlendShift
from drivesim.diffusion.context import prediction_mask, sample_num_context
from drivesim.diffusion.latent_idm import LatentInverseDynamics
from drivesim.diffusion.unet import SpatialUNet
from drivesim.diffusion.video_loading import VIDEO_LDM_STAGE, ImageLDM, VideoWindow, load_image_ldm
from drivesim.diffusion.video_unet import VideoUNet
from drivesim.training.autoencoder import lr_factor
from drivesim.training.checkpoint import save_stage
from drivesim.training.clip_batch import ClipBatch, clip_batch
from drivesim.training.distributed import (
    DistInfo,
    all_reduce_mean,
    any_rank,
    autocast,
    cleanup,
    init_distributed,
    shard_batch_indices,
    wrap_ddp,
)
from drivesim.training.ema import EMA
from drivesim.training.init_from import init_from_stage, init_lineage
from drivesim.training.logging import LossLog
from drivesim.training.own_context import own_context
from drivesim.training.pose_consistency import PoseConsistency, load_pose_consistency
from drivesim.training.run_state import RunCheckpointer
from drivesim.training.video_config import VideoLDMTrainConfig, VideoTrainCommon
from drivesim.training.video_loss import masked_loss
from drivesim.training.warp_setup import WarpFn, frame_warp, with_warp_interval


def build_video_unet(image: ImageLDM, cfg: VideoTrainCommon) -> VideoUNet:
    """The VideoUNet around the image model, or around a fresh UNet of its shape (from scratch)."""
    shift = BlendShift(image.schedule, image.target) if cfg.video.blend_residual else None
    if cfg.from_scratch:
        video_cfg = dataclasses.replace(cfg.video, freeze_image=False)
        return VideoUNet(SpatialUNet(image.unet_config), video_cfg, blend_shift=shift)
    return VideoUNet(image.unet, dataclasses.replace(cfg.video, freeze_image=cfg.theta_lr == 0), blend_shift=shift)


def param_groups(model: VideoUNet, cfg: VideoTrainCommon) -> list[dict[str, Any]]:
    """The optimizer's groups, each with the `lr_scale` its learning rate is cfg.lr times: phi (and theta from
    scratch) at 1; with `theta_lr` > 0 a second group, the image UNet's theta, at theta_lr."""
    params = model.trainable_parameters()
    if cfg.theta_lr == 0:  # (the config forbids theta_lr > 0 with from_scratch)
        return [{"params": params, "lr_scale": 1.0}]
    theta = {id(p) for p in model.image_unet.parameters()}
    return [
        {"params": [p for p in params if id(p) not in theta], "lr_scale": 1.0},
        {"params": [p for p in params if id(p) in theta], "lr_scale": cfg.theta_lr},
    ]


@dataclass(frozen=True)
class VideoTrainResult:
    steps: int
    loss: float  # mean training loss over the last `log_every` steps
    alphas: list[float]
    cpu_minutes: float
    model_dir: Path


def run_video_training(
    cfg: VideoTrainCommon,
    stage: str,
    window: VideoWindow,
    make_batch: Callable[[DistInfo, int, torch.Generator], tuple[ClipBatch, Tensor]],
    after_step: Callable[[int], None] | None = None,
    stage_extra: dict[str, Any] | None = None,
    export_stage: str | None = None,
    refine: Callable[[ClipBatch, Tensor, VideoUNet, ImageLDM, torch.Generator], ClipBatch] | None = None,
    warp: WarpFn | None = None,
    pose: PoseConsistency | None = None,
) -> VideoTrainResult:
    """The training loop shared by the video stages; `make_batch(info, step, generator)` returns
    this rank's (ClipBatch, context mask (b, t)). `init_from` reads `cfg.init_stage` (default `stage`); the
    result is written as `export_stage` (default: `stage`). `refine(batch, mask, ema_model, image, generator)`,
    if given, turns the batch into the one trained on (own-rollout context), with the EMA model in eval; `pose`
    adds the pose-consistency term."""
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    info = init_distributed(cfg.device)
    run_dir, model_dir = Path(cfg.run_dir), Path(cfg.model_dir)
    image = load_image_ldm(model_dir)
    torch.manual_seed(cfg.seed)
    model = build_video_unet(image, cfg).to(info.device)
    ema = EMA(model, decay=cfg.ema_decay)
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules: dict[str, nn.Module] = {"model": model, "ema": ema}
    optimizers: dict[str, torch.optim.Optimizer] = {"opt": opt}
    idm: LatentInverseDynamics | None = None
    if cfg.action_consistency_weight > 0:
        idm = LatentInverseDynamics(model.latent_channels).to(info.device)
        modules["idm"] = idm
        optimizers["idm_opt"] = torch.optim.AdamW(idm.parameters(), lr=cfg.idm_lr)
    checkpointer = RunCheckpointer(run_dir, keep=3, enabled=info.is_main)
    restored = checkpointer.restore(modules, optimizers)
    if restored is None and cfg.init_from is not None:
        init_from_stage(model, Path(cfg.init_from), cfg.init_stage or stage, theta=cfg.init_theta)
        ema = EMA(model, decay=cfg.ema_decay)
        modules["ema"] = ema
    step = restored.step if restored else 0
    cpu_seconds = float(restored.extra.get("cpu_seconds", 0.0)) if restored else 0.0
    # read where the run started once, at its start (model_dir may be init_from, and this run overwrites its stage)
    lineage = restored.extra.get("init_from") if restored else None
    if lineage is None and cfg.init_from is not None:
        lineage = init_lineage(Path(cfg.init_from), cfg.init_stage or stage, cfg.init_theta)
    if restored and info.is_main:
        print(f"{stage}: resumed from {restored.path} at step {step}")
    ddp_model = wrap_ddp(model, info)
    ddp_idm = wrap_ddp(idm, info) if idm is not None else None
    # rows up to the restored step were logged before that checkpoint was written: keep them
    log = LossLog(run_dir, resume_step=step + 1 if restored else None)
    started, cpu_started = time.monotonic(), time.process_time()
    n_phi = sum(p.numel() for p in params)
    if info.is_main:
        print(f"{stage}: {n_phi / 1e6:.2f}M trainable parameters, target {image.target}, device {info.device}")

    def save_checkpoint() -> None:
        spent = cpu_seconds + time.process_time() - cpu_started
        checkpointer.save(step, modules, optimizers, extra={"cpu_seconds": spent, "init_from": lineage})
        if info.is_main:
            log.save()
            log.plot(run_dir / "losses.png", title=stage)

    recent: list[float] = []
    recent_extra: dict[str, list[float]] = {}
    bar = tqdm(total=cfg.max_steps, initial=step, desc=stage, dynamic_ncols=True, disable=not info.is_main)
    while step < cfg.max_steps:
        generator = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) * 1_009 + info.rank)
        batch, mask = make_batch(info, step, generator)
        batch, mask = batch.to(info.device), mask.to(info.device)
        if refine is not None:
            batch = refine(batch, mask, ema.module.eval(), image, generator)
        factor = lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * group["lr_scale"] * factor
        model.train()
        weight = cfg.action_consistency_weight if step >= cfg.action_consistency_start else 0.0
        with autocast(info.device, cfg.precision):
            parts = masked_loss(
                ddp_model, batch, mask, image.schedule, image.target, generator, cfg, model, ddp_idm, weight, warp,
                pose,
            )
        loss = parts.loss
        for optimizer in optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        for optimizer in optimizers.values():
            optimizer.step()
        ema.update(model)
        step += 1
        bar.update(1)
        recent = (recent + [float(all_reduce_mean(loss, info))])[-cfg.log_every :]
        tracked = (
            ("forecast_mse", parts.forecast), ("idm_fit", parts.idm_fit), ("consistency", parts.consistency),
            ("pose", parts.pose),
        )
        for key, value in tracked:
            if value is not None:
                values = recent_extra.setdefault(key, []) + [float(all_reduce_mean(value.detach(), info))]
                recent_extra[key] = values[-cfg.log_every :]
        if step % cfg.log_every == 0 and info.is_main:
            alphas = [float(b.alpha().detach()) for b in model.blenders()]
            extra_logs = {key: sum(values) / len(values) for key, values in recent_extra.items()}
            log.log(step, loss=sum(recent) / len(recent), mean_alpha=sum(alphas) / max(1, len(alphas)), **extra_logs)
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
        out_of_time = cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes
        if cfg.max_minutes is not None:  # every rank stops at the same step (else the next all-reduce hangs)
            out_of_time = any_rank(out_of_time, info)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or out_of_time:
            save_checkpoint()
        if after_step is not None:
            after_step(step)
        if out_of_time:
            bar.write(f"{stage}: max_minutes={cfg.max_minutes} reached at step {step}")
            break
    bar.close()

    final = ema.module.eval()
    alphas = [float(b.alpha().detach()) for b in final.blenders()]
    cpu_minutes = (cpu_seconds + time.process_time() - cpu_started) / 60.0
    if info.is_main:
        config = {
            "unet": dataclasses.asdict(image.unet_config),
            "schedule": dataclasses.asdict(image.schedule_config),
            "target": image.target,
            "video": dataclasses.asdict(final.config),
            "window": dataclasses.asdict(window),
        }
        extra = {
            "steps": step,
            "loss": sum(recent) / len(recent) if recent else float("nan"),
            "alphas": alphas,
            "cpu_minutes": cpu_minutes,
            "latent_cache": str(cfg.latent_cache),
            "theta_lr": cfg.theta_lr,
            # tau_c that sampling should noise the context with (drivesim.sampling.video)
            "context_noise_level": cfg.context_noise_sampling if final.config.context_noise else 0,
            **(stage_extra or {}),
            "train_config": dataclasses.asdict(cfg),  # the whole recipe: seed, box_drop, box_weight, lr, ...
        }
        if lineage is not None:
            extra["init_from"] = lineage
        export_stage = export_stage or stage
        save_stage(model_dir, export_stage, final, config, extra=extra)
        print(f"{stage}: step {step}, loss {extra['loss']:.4f} -> {model_dir} (stage {export_stage!r})")
    cleanup(info)
    return VideoTrainResult(
        steps=step,
        loss=sum(recent) / len(recent) if recent else float("nan"),
        alphas=alphas,
        cpu_minutes=cpu_minutes,
        model_dir=model_dir,
    )


def window_dataset(
    cfg: VideoTrainCommon, stride: int, split: str = "train", lead: int = 0
) -> LatentWindowDataset:
    """Windows of cfg.num_frames (+ `lead` frames before them) at `stride` from the latent cache."""
    return LatentWindowDataset(
        cfg.latent_cache,
        LatentWindowConfig(
            num_frames=cfg.num_frames + lead, stride=stride, split=split, max_boxes=cfg.max_boxes,
            window_step=cfg.window_step,
        ),
    )


def train(cfg: VideoLDMTrainConfig, after_step: Callable[[int], None] | None = None) -> VideoTrainResult:
    """Train (or resume) the prediction model and export its EMA as stage `cfg.export_stage`
    (default "video_ldm").

    `after_step(step)` is called after every completed step (tests use it to interrupt).
    """
    lead = cfg.own_context_chain if cfg.own_context > 0 else 0  # own-rollout context: lead frames to roll out from
    dataset = window_dataset(cfg, cfg.frame_stride, lead=lead)
    print(f"video_ldm: {len(dataset)} training windows of {cfg.num_frames} frames at stride {cfg.frame_stride}")
    warp = None
    if cfg.video.ego_warp:
        cfg = with_warp_interval(cfg, {float(r.fps) for r in dataset.clips})
        warp = frame_warp(cfg, dataset.latent_scale)

    def make_batch(info: DistInfo, step: int, generator: torch.Generator) -> tuple[ClipBatch, Tensor]:
        indices = shard_batch_indices(len(dataset), cfg.batch_size, step, info, cfg.seed)
        batch = clip_batch(collate_latent_windows([dataset[i] for i in indices]), cfg.use_boxes)
        num_context = sample_num_context(len(indices), cfg.context_probs, generator)  # S ~ p_S
        return batch, prediction_mask(num_context, cfg.num_frames)

    def refine(
        batch: ClipBatch, mask: Tensor, ema_model: VideoUNet, image: ImageLDM, generator: torch.Generator
    ) -> ClipBatch:
        return own_context(
            ema_model, batch, mask, image.schedule, image.target, generator, cfg.own_context, cfg.own_context_steps,
            warp, cfg.own_context_chain,
        )

    pose = None
    if cfg.pose_weight > 0:
        pose = load_pose_consistency(cfg.pose_from or cfg.init_from or cfg.model_dir, cfg.pose_weight, cfg.frame_stride)
    window = VideoWindow(num_frames=cfg.num_frames, frame_stride=cfg.frame_stride)
    extra = {"context_probs": list(cfg.context_probs), "own_context": cfg.own_context,
             "own_context_chain": cfg.own_context_chain, "pose_weight": cfg.pose_weight}
    return run_video_training(
        cfg, VIDEO_LDM_STAGE, window, make_batch, after_step, stage_extra=extra, export_stage=cfg.export_stage,
        refine=refine if cfg.own_context > 0 else None, warp=warp, pose=pose,
    )
