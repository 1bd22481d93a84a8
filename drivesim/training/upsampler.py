"""Stage 7a: train the image upsampler on patches (`drivesim train stage=upsampler`).

Pixel-space diffusion (paper Sec. 3.4): random hi-res patches x0 of world frames with the
matching crop of the bilinearly upsampled low-res frame; per sample a diffusion time
tau ~ U{0..T-1} and a noise-augmentation level tau_gamma ~ U{0..max_noise_level}; the
condition c = alpha_gamma * up(x_low) + sigma_gamma * eps (Eq. (5)) is concatenated to z_tau
and tau_gamma is given to the model; the loss is the eps/v regression of Eq. (1).

Training data are exact low/high-res pairs rendered by the procedural world
(`drivesim.training.upsampler_data`). Held-out episodes (other seeds) are upsampled as whole
frames with the EMA model to report PSNR/SSIM next to bicubic. Resumes from the newest
run checkpoint; the EMA weights are exported as stage "upsampler" of `model_dir`.

Under torchrun (gloo, on CPU) every rank draws the global batch of patches that one process
would draw at that step and trains on its rows of it, with its own noise (a generator seeded by
(seed, step, rank)); DistributedDataParallel averages the gradients; rank 0 writes checkpoints,
the loss log and the exported stage.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from tqdm import tqdm

from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.upsampler import UPSAMPLER_STAGE, Upsampler, UpsamplerConfig
from drivesim.eval.temporal import flicker, psnr, ssim
from drivesim.sampling.upsample import VideoUpsamplerModel, upsample_video
from drivesim.training.autoencoder import lr_factor
from drivesim.training.checkpoint import save_stage
from drivesim.training.distributed import (
    SINGLE,
    DistInfo,
    all_reduce_mean,
    any_rank,
    check_batch,
    cleanup,
    init_distributed,
    rank_generator,
    rank_rows,
    wrap_ddp,
)
from drivesim.training.ema import EMA
from drivesim.training.logging import LossLog
from drivesim.training.run_state import RunCheckpointer
from drivesim.training.upsampler_data import WorldPairs, WorldPairsConfig, render_pairs, sample_patches

VAL_SEED_OFFSET = 1_000_000  # held-out episodes use seeds from here on


@dataclass
class UpsamplerTrainConfig:
    run_dir: str = "runs/upsampler/image"
    model_dir: str = "runs/models/default"  # stage "upsampler" is written here
    model: UpsamplerConfig = field(default_factory=UpsamplerConfig)
    data: WorldPairsConfig = field(default_factory=WorldPairsConfig)
    val_episodes: int = 4
    val_frames: int = 2
    patch_size: int = 96  # hi-res patch side (a multiple of model.divisor and model.scale)
    batch_size: int = 8
    max_steps: int = 3000
    max_minutes: float | None = None
    lr: float = 5e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    eval_steps: int = 4  # DDIM steps for the held-out evaluation
    checkpoint_every: int = 200
    eval_every: int = 500
    log_every: int = 10
    hflip: bool = True
    num_threads: int = 1  # on a shared, loaded CPU one thread is several times faster than two
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_episodes", "val_frames", "batch_size", "max_steps", "eval_steps", "checkpoint_every",
                     "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"UpsamplerTrainConfig.{name}={getattr(self, name)} must be >= 1")
        check_patch_size("UpsamplerTrainConfig", self.patch_size, self.model)


def check_patch_size(owner: str, patch_size: int, model: UpsamplerConfig) -> None:
    multiple = math.lcm(model.divisor, model.scale)
    if patch_size < 1 or patch_size % multiple:
        raise ValueError(
            f"{owner}.patch_size={patch_size} must be a positive multiple of {multiple} "
            "(the model's size divisor and scale)"
        )


@dataclass(frozen=True)
class UpsampleQuality:
    """Against ground-truth hi-res frames: PSNR (dB), SSIM, and for clips the paired flicker
    (mean |delta_t upsampled - delta_t truth| in [0, 1] pixel units; None for single frames)."""

    psnr: float
    ssim: float
    flicker: float | None


def upsample_quality(video_hat: torch.Tensor, video: torch.Tensor) -> UpsampleQuality:
    """Quality of `b t c h w` upsampled frames against the ground truth (both in [-1, 1])."""
    temporal = flicker(video_hat, video, paired=True).paired_delta_error if video.shape[1] > 1 else None
    return UpsampleQuality(psnr=psnr(video_hat, video), ssim=ssim(video_hat, video), flicker=temporal)


def bicubic(low_res: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic x`scale` of `b t c h w` frames, clamped to [-1, 1] (the baseline)."""
    frames = rearrange(low_res, "b t c h w -> (b t) c h w")
    up = F.interpolate(frames, scale_factor=float(scale), mode="bicubic", align_corners=False)  # ((b t), c, H, W)
    return rearrange(up.clamp(-1.0, 1.0), "(b t) c h w -> b t c h w", b=low_res.shape[0])


@torch.no_grad()
def evaluate_model(
    model: VideoUpsamplerModel,
    low: torch.Tensor,
    high: torch.Tensor,
    steps: int,
    seed: int,
    chunk_frames: int = 8,
    overlap: int = 2,
) -> UpsampleQuality:
    """Upsample held-out `b t c h w` low-res clips (fixed seed) and compare with the truth."""
    generator = torch.Generator().manual_seed(seed)
    video_hat = upsample_video(model, low, steps, generator, chunk_frames=chunk_frames, overlap=overlap)
    return upsample_quality(video_hat, high)


class UpsamplerTrainer:
    """The image upsampler, its EMA and optimizer; `step` is this rank's share of one patch batch."""

    def __init__(self, cfg: UpsamplerTrainConfig, info: DistInfo = SINGLE) -> None:
        check_batch("UpsamplerTrainConfig", cfg.batch_size, info)
        self.cfg, self.info = cfg, info
        torch.manual_seed(cfg.seed)
        self.model = Upsampler(cfg.model)
        self.ema = EMA(self.model, decay=cfg.ema_decay)
        self.net = wrap_ddp(self.model, info)  # gradients averaged over ranks
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)

    def modules(self) -> dict[str, nn.Module]:
        return {"upsampler": self.model, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"upsampler": self.opt}

    def step(self, pairs: WorldPairs, step: int, generator: torch.Generator) -> float:
        cfg, model = self.cfg, self.model
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        batch = sample_patches(pairs, cfg.batch_size, 1, cfg.patch_size, generator, cfg.hflip)  # the global batch
        generator = rank_generator(generator, cfg.seed, step, self.info)
        x0, up = rank_rows(batch.high[:, 0], self.info), rank_rows(batch.up[:, 0], self.info)  # (b / N, 3, P, P)
        level = torch.randint(0, cfg.model.max_noise_level + 1, (x0.shape[0],), generator=generator)  # tau_gamma
        cond = model.noise_augment(up, level, torch.randn(up.shape, generator=generator))  # Eq. (5)
        model.train()
        loss = diffusion_loss(
            lambda z, tau, c: self.net(z, tau, c, level), x0, cond, model.schedule, generator, model.target
        ).loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.ema.update(model)
        return float(loss.detach())


@dataclass(frozen=True)
class LoopResult:
    steps: int
    cpu_minutes: float
    quality: UpsampleQuality


class LoopConfig(Protocol):
    """The loop settings both upsampler stages' configs have."""

    run_dir: str
    max_steps: int
    max_minutes: float | None
    seed: int
    log_every: int
    eval_every: int
    checkpoint_every: int


class StageTrainer(Protocol):
    def modules(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def step(self, pairs: WorldPairs, step: int, generator: torch.Generator) -> float: ...


def run_loop(
    name: str,
    cfg: LoopConfig,
    trainer: StageTrainer,
    pairs: WorldPairs,
    evaluate: Callable[[], UpsampleQuality],
    after_step: Callable[[int], None] | None = None,
    info: DistInfo = SINGLE,
) -> LoopResult:
    """The loop shared by both stages: resume, step, log, evaluate, checkpoint, final quality.
    Every rank steps and evaluates (the same EMA weights); rank 0 logs and writes."""
    run_dir = Path(cfg.run_dir)
    checkpointer = RunCheckpointer(run_dir, keep=2, enabled=info.is_main)
    restored = checkpointer.restore(trainer.modules(), trainer.optimizers())
    step = restored.step if restored else 0
    cpu_seconds = float(restored.extra.get("cpu_seconds", 0.0)) if restored else 0.0
    if restored and info.is_main:
        print(f"{name}: resumed from {restored.path} at step {step}")
    log = LossLog(run_dir, resume_step=step + 1 if restored else None)  # keep rows <= the checkpoint step
    started, cpu_started = time.monotonic(), time.process_time()
    bar = tqdm(total=cfg.max_steps, initial=step, desc=name, dynamic_ncols=True, disable=not info.is_main)
    last: tuple[int, UpsampleQuality] | None = None
    while step < cfg.max_steps:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # the same on every rank
        loss = trainer.step(pairs, step, generator)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            if info.distributed:  # a collective: every rank takes part
                loss = float(all_reduce_mean(torch.tensor(loss, dtype=torch.float64), info))
            if info.is_main:
                log.log(step, loss=loss)
                bar.set_postfix(loss=f"{loss:.4f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            q = evaluate()
            last = (step, q)
            scalars = {"val_psnr": q.psnr, "val_ssim": q.ssim}
            if q.flicker is not None:
                scalars["val_flicker"] = q.flicker
            if info.is_main:
                log.log(step, **scalars)
                bar.write(f"{name} step {step}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in scalars.items()))
        out_of_time = cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes
        if cfg.max_minutes is not None:
            out_of_time = any_rank(out_of_time, info)  # all ranks stop at once, when any is out of time
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or out_of_time:
            spent = cpu_seconds + time.process_time() - cpu_started
            checkpointer.save(step, trainer.modules(), trainer.optimizers(), extra={"cpu_seconds": spent})
            if info.is_main:
                log.save()
                log.plot(run_dir / "losses.png", title=name)
        if after_step is not None:
            after_step(step)
        if out_of_time:
            bar.write(f"{name}: max_minutes={cfg.max_minutes} reached at step {step}")
            break
    bar.close()
    quality = last[1] if last is not None and last[0] == step else evaluate()
    cpu_minutes = (cpu_seconds + time.process_time() - cpu_started) / 60.0
    return LoopResult(steps=step, cpu_minutes=cpu_minutes, quality=quality)


@dataclass(frozen=True)
class UpsamplerTrainResult:
    steps: int
    upsampler: UpsampleQuality
    bicubic: UpsampleQuality
    cpu_minutes: float
    model_dir: Path


def train(cfg: UpsamplerTrainConfig, after_step: Callable[[int], None] | None = None) -> UpsamplerTrainResult:
    """Train (or resume) the image upsampler and export the EMA model to `cfg.model_dir`."""
    torch.set_num_threads(cfg.num_threads)
    info = init_distributed("cpu")
    check_batch("UpsamplerTrainConfig", cfg.batch_size, info)
    scale = cfg.model.scale
    pairs = render_pairs(cfg.data, scale, first_seed=cfg.seed * 10_000)
    val_cfg = dataclasses.replace(cfg.data, num_episodes=cfg.val_episodes, frames_per_episode=cfg.val_frames)
    val_low, val_high = render_pairs(val_cfg, scale, first_seed=VAL_SEED_OFFSET + cfg.seed).video()
    base = upsample_quality(bicubic(val_low, scale), val_high)
    if info.is_main:
        print(
            f"upsampler: {pairs.low.shape[0]}x{pairs.low.shape[1]} train frames, "
            f"{val_low.shape[0]}x{val_low.shape[1]} held-out; bicubic PSNR {base.psnr:.2f} dB, SSIM {base.ssim:.4f}"
        )
    trainer = UpsamplerTrainer(cfg, info)

    def evaluate() -> UpsampleQuality:
        return evaluate_model(trainer.ema.module.eval(), val_low, val_high, cfg.eval_steps, cfg.seed)

    result = run_loop("upsampler", cfg, trainer, pairs, evaluate, after_step, info)
    model = trainer.ema.module.eval()
    extra = {
        "steps": result.steps,
        "val": dataclasses.asdict(result.quality),
        "val_bicubic": dataclasses.asdict(base),
        "eval_steps": cfg.eval_steps,
        "cpu_minutes": result.cpu_minutes,
        "patch_size": cfg.patch_size,
    }
    if info.is_main:
        save_stage(Path(cfg.model_dir), UPSAMPLER_STAGE, model, {"upsampler": dataclasses.asdict(cfg.model)}, extra)
        print(
            f"upsampler: step {result.steps}: PSNR {result.quality.psnr:.2f} dB (bicubic {base.psnr:.2f}), "
            f"SSIM {result.quality.ssim:.4f} (bicubic {base.ssim:.4f}) -> {cfg.model_dir}"
        )
    cleanup(info)
    return UpsamplerTrainResult(
        steps=result.steps,
        upsampler=result.quality,
        bicubic=base,
        cpu_minutes=result.cpu_minutes,
        model_dir=Path(cfg.model_dir),
    )
