"""Stage 7b: video fine-tuning of the upsampler (`drivesim train stage=upsampler_temporal`).

Video LDM Sec. 3.4: temporal layers (3-D-conv residual blocks with learned alpha blending)
are inserted after the spatial blocks of the trained image upsampler; the spatial weights
stay frozen and only the temporal layers train. A training sample is a clip of consecutive
world frames (a fixed random patch through time) with its noise-augmented low-res sequence;
one diffusion time tau and one tau_gamma per clip, the eps/v loss over all frames (Eq. (1)).

Held-out clips are upsampled as whole frames, chunked over time, and compared with the
ground truth (PSNR, SSIM, paired flicker) next to the frame-by-frame image model. The EMA
weights (spatial ones included) are exported as stage "upsampler_temporal" of `model_dir`,
next to its "upsampler" stage. Under torchrun the ranks split each global batch of clips and
DistributedDataParallel averages the gradients; rank 0 writes (see drivesim.training.upsampler).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.upsampler import Upsampler, load_upsampler
from drivesim.diffusion.upsampler_temporal import (
    UPSAMPLER_TEMPORAL_STAGE,
    TemporalUpsampler,
    TemporalUpsamplerConfig,
    stage_config,
)
from drivesim.training.autoencoder import lr_factor
from drivesim.training.checkpoint import save_stage
from drivesim.training.distributed import (
    SINGLE,
    DistInfo,
    check_batch,
    cleanup,
    init_distributed,
    rank_generator,
    rank_rows,
    wrap_ddp,
)
from drivesim.training.ema import EMA
from drivesim.training.upsampler import (
    VAL_SEED_OFFSET,
    UpsampleQuality,
    bicubic,
    check_patch_size,
    evaluate_model,
    run_loop,
    upsample_quality,
)
from drivesim.training.upsampler_data import WorldPairs, WorldPairsConfig, render_pairs, sample_patches


def _clip_data() -> WorldPairsConfig:
    return WorldPairsConfig(num_episodes=24, frames_per_episode=16, frame_stride=1)


@dataclass
class UpsamplerTemporalTrainConfig:
    run_dir: str = "runs/upsampler/temporal"
    model_dir: str = "runs/models/default"  # holds stage "upsampler"; "upsampler_temporal" is added
    temporal: TemporalUpsamplerConfig = field(default_factory=TemporalUpsamplerConfig)
    data: WorldPairsConfig = field(default_factory=_clip_data)  # consecutive frames (frame_stride=1)
    num_frames: int = 6  # frames per training clip
    val_episodes: int = 2
    val_frames: int = 8
    patch_size: int = 96
    batch_size: int = 2  # clips per step
    max_steps: int = 1500
    max_minutes: float | None = None
    lr: float = 5e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    eval_steps: int = 4
    chunk_frames: int = 8  # frames per chunk in the held-out evaluation
    chunk_overlap: int = 2  # frames shared by consecutive chunks
    checkpoint_every: int = 100
    eval_every: int = 500
    log_every: int = 10
    hflip: bool = True
    num_threads: int = 1  # on a shared, loaded CPU one thread is several times faster than two
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_episodes", "batch_size", "max_steps", "eval_steps", "chunk_frames", "checkpoint_every",
                     "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"UpsamplerTemporalTrainConfig.{name}={getattr(self, name)} must be >= 1")
        if not 2 <= self.num_frames <= self.data.frames_per_episode:
            raise ValueError(
                f"UpsamplerTemporalTrainConfig.num_frames={self.num_frames} must be in "
                f"2..data.frames_per_episode={self.data.frames_per_episode}"
            )
        if not 0 <= self.chunk_overlap < self.chunk_frames:
            raise ValueError(
                f"UpsamplerTemporalTrainConfig.chunk_overlap={self.chunk_overlap} must be in 0..chunk_frames-1"
            )
        if self.val_frames < 2:
            raise ValueError(f"UpsamplerTemporalTrainConfig.val_frames={self.val_frames} must be >= 2 (flicker)")


class UpsamplerTemporalTrainer:
    """Frozen image upsampler + trainable temporal layers, their EMA and optimizer."""

    def __init__(self, cfg: UpsamplerTemporalTrainConfig, image_model: Upsampler, info: DistInfo = SINGLE) -> None:
        check_batch("UpsamplerTemporalTrainConfig", cfg.batch_size, info)
        self.cfg, self.info = cfg, info
        torch.manual_seed(cfg.seed)
        self.model = TemporalUpsampler(image_model, cfg.temporal)
        self.ema = EMA(self.model, decay=cfg.ema_decay)
        self.net = wrap_ddp(self.model, info)  # forward = forward_video; gradients averaged over ranks
        self.opt = torch.optim.AdamW(self.model.temporal_parameters(), lr=cfg.lr, weight_decay=0.0)

    def modules(self) -> dict[str, nn.Module]:
        return {"upsampler_temporal": self.model, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"upsampler_temporal": self.opt}

    def step(self, pairs: WorldPairs, step: int, generator: torch.Generator) -> float:
        cfg, model = self.cfg, self.model
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        batch = sample_patches(pairs, cfg.batch_size, cfg.num_frames, cfg.patch_size, generator, cfg.hflip)
        generator = rank_generator(generator, cfg.seed, step, self.info)
        x0, up = rank_rows(batch.high, self.info), rank_rows(batch.up, self.info)  # (b / N, t, 3, P, P)
        max_level = model.image_model.config.max_noise_level
        level = torch.randint(0, max_level + 1, (x0.shape[0],), generator=generator)  # tau_gamma per clip
        cond = model.image_model.noise_augment(up, level, torch.randn(up.shape, generator=generator))  # Eq. (5)
        model.train()
        loss = diffusion_loss(
            lambda z, tau, c: self.net(z, tau, c, level), x0, cond, model.schedule, generator, model.target
        ).loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.temporal_parameters(), cfg.grad_clip)
        self.opt.step()
        self.ema.update(model)
        return float(loss.detach())


@dataclass(frozen=True)
class UpsamplerTemporalTrainResult:
    steps: int
    temporal: UpsampleQuality
    frame_by_frame: UpsampleQuality
    bicubic: UpsampleQuality
    alphas: dict[str, float]
    cpu_minutes: float
    model_dir: Path


def train(
    cfg: UpsamplerTemporalTrainConfig, after_step: Callable[[int], None] | None = None
) -> UpsamplerTemporalTrainResult:
    """Fine-tune (or resume) the temporal layers and export the EMA model to `cfg.model_dir`."""
    torch.set_num_threads(cfg.num_threads)
    info = init_distributed("cpu")
    check_batch("UpsamplerTemporalTrainConfig", cfg.batch_size, info)
    image_model = load_upsampler(cfg.model_dir)
    check_patch_size("UpsamplerTemporalTrainConfig", cfg.patch_size, image_model.config)
    scale = image_model.scale
    pairs = render_pairs(cfg.data, scale, first_seed=cfg.seed * 10_000 + 5_000)
    val_cfg = dataclasses.replace(cfg.data, num_episodes=cfg.val_episodes, frames_per_episode=cfg.val_frames)
    val_low, val_high = render_pairs(val_cfg, scale, first_seed=VAL_SEED_OFFSET + 5_000 + cfg.seed).video()
    base = upsample_quality(bicubic(val_low, scale), val_high)
    frame_wise = evaluate_model(image_model, val_low, val_high, cfg.eval_steps, cfg.seed, cfg.chunk_frames)
    if info.is_main:
        print(
            f"upsampler_temporal: held-out bicubic PSNR {base.psnr:.2f} dB, flicker {base.flicker:.4f}; "
            f"frame-by-frame PSNR {frame_wise.psnr:.2f} dB, flicker {frame_wise.flicker:.4f}"
        )
    trainer = UpsamplerTemporalTrainer(cfg, image_model, info)

    def evaluate() -> UpsampleQuality:
        model = trainer.ema.module.eval()
        return evaluate_model(
            model, val_low, val_high, cfg.eval_steps, cfg.seed, cfg.chunk_frames, cfg.chunk_overlap  # type: ignore[arg-type]
        )

    result = run_loop("upsampler_temporal", cfg, trainer, pairs, evaluate, after_step, info)
    model: TemporalUpsampler = trainer.ema.module.eval()  # type: ignore[assignment]
    extra = {
        "steps": result.steps,
        "val": dataclasses.asdict(result.quality),
        "val_frame_by_frame": dataclasses.asdict(frame_wise),
        "val_bicubic": dataclasses.asdict(base),
        "alphas": model.alphas(),
        "eval_steps": cfg.eval_steps,
        "cpu_minutes": result.cpu_minutes,
        "num_frames": cfg.num_frames,
    }
    if info.is_main:
        save_stage(Path(cfg.model_dir), UPSAMPLER_TEMPORAL_STAGE, model, stage_config(model), extra)
        print(
            f"upsampler_temporal: step {result.steps}: PSNR {result.quality.psnr:.2f} dB "
            f"(frame-by-frame {frame_wise.psnr:.2f}, bicubic {base.psnr:.2f}), flicker {result.quality.flicker:.4f} "
            f"(frame-by-frame {frame_wise.flicker:.4f}, bicubic {base.flicker:.4f}) -> {cfg.model_dir}"
        )
    cleanup(info)
    return UpsamplerTemporalTrainResult(
        steps=result.steps,
        temporal=result.quality,
        frame_by_frame=frame_wise,
        bicubic=base,
        alphas=model.alphas(),
        cpu_minutes=result.cpu_minutes,
        model_dir=Path(cfg.model_dir),
    )
