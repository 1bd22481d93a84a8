"""Stage 1: train the KL image autoencoder on frames (`drivesim train stage=autoencoder`).

Loss (per step, frames x in [-1, 1]):
    L1(x_hat, x) + gradient_weight * L1(sobel(x_hat), sobel(x)) + kl_weight * KL
    + [step >= disc_start] disc_weight * lambda * (-D(x_hat))
with lambda the LDM adaptive weight (ratio of gradient norms at the decoder's last layer)
and D a patch discriminator trained with the hinge loss. The EMA weights are what is
evaluated and exported (stage "autoencoder" of `model_dir`, with the latent scale in `extra`).

Data (`data_format`), a global batch of `batch_size` frames per step either way:
- "dir": the frames of the dataset folder's train split are held in memory and each batch
  is drawn (with replacement) by a generator seeded by (seed, step), so a resumed run draws
  exactly the batches the uninterrupted run would.
- "shards": frames stream from the tar shards of `drivesim data shards` (`ShardFrameStream`,
  every frame a 1-frame window of `ShardWindowDataset`); the rank's node info splits shards
  between ranks and each rank takes `batch_size // world_size` frames. Passes over the
  shards are epochs (`set_epoch` reshuffles; ranks holding different numbers of frames end
  their passes at different steps); with `shard_resampled` there are no epochs.
  Resume: the checkpoint stores every rank's stream position (epoch, batches taken in it).
  Without `shard_resampled` the resumed run reopens that epoch and skips the batches already taken
  (decoding them again, at most one pass), so with the same shards and `shard_workers` it
  trains on exactly the batches of the uninterrupted run. With `shard_resampled` the stream
  of a run segment is seeded by the step it starts at: a resumed run draws fresh shards
  rather than replaying the segment's first batches, but not the uninterrupted run's batches.
  Held-out and latent-scale frames come from the shards' val/test and train clips.

Under torchrun (gloo, on CPU) every rank trains on its rows of the global batch: with "dir"
every rank draws the batch one process would draw at that step and takes rows r * b / N ..
(r + 1) * b / N; with "shards" its own stream gives them. Posterior samples then come from a
generator seeded by (seed, step, rank). DistributedDataParallel averages the autoencoder's and
the discriminator's gradients; the generator's GAN term and the adaptive weight go through the
plain modules (the weight is each rank's own). Rank 0 writes checkpoints (with every rank's
shard stream position), the loss log (losses averaged over ranks) and the exported stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from tqdm import tqdm

from drivesim.autoencoder.discriminator import PatchDiscriminator
from drivesim.autoencoder.frame_bank import ClipFrames, load_clip_frames
from drivesim.autoencoder.loading import AUTOENCODER_STAGE
from drivesim.autoencoder.losses import (
    adaptive_gan_weight,
    generator_loss,
    hinge_discriminator_loss,
    kl_loss,
    reconstruction_loss,
)
from drivesim.autoencoder.metrics import psnr, ssim
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.scaling import compute_latent_scale
from drivesim.training.autoencoder_config import AutoencoderTrainConfig
from drivesim.training.autoencoder_data import ShardFrameStream, shard_frames, stream_start
from drivesim.training.checkpoint import save_stage
from drivesim.training.distributed import (
    SINGLE,
    DistInfo,
    all_gather_objects,
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


@dataclass(frozen=True)
class AutoencoderTrainResult:
    steps: int
    val_psnr: float
    val_ssim: float
    latent_scale: float
    cpu_minutes: float
    model_dir: Path


@dataclass(frozen=True)
class StepLosses:
    total: float
    rec: float
    kl: float
    gan: float
    gan_weight: float
    disc: float


def lr_factor(step: int, warmup: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up then cosine decay from 1 to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def sample_frames(bank: ClipFrames, batch_size: int, generator: torch.Generator, hflip: bool) -> torch.Tensor:
    """Random frames of the bank as (b, 3, H, W) float in [-1, 1]."""
    idx = torch.randint(0, bank.frames.shape[0], (batch_size,), generator=generator)
    x = rearrange(bank.frames[idx], "b h w c -> b c h w").contiguous().float() / 127.5 - 1.0
    if hflip:
        flip = torch.rand(batch_size, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def evaluation_frames(bank: ClipFrames, count: int) -> torch.Tensor:
    """`count` frames spread evenly over the bank, (n, 3, H, W) in [-1, 1]."""
    idx = np.linspace(0, bank.frames.shape[0] - 1, num=min(count, bank.frames.shape[0])).round().astype(int)
    frames = rearrange(bank.frames[torch.from_numpy(idx)], "n h w c -> n c h w").contiguous()
    return frames.float() / 127.5 - 1.0


@torch.no_grad()
def evaluate(model: Autoencoder, frames: torch.Tensor, batch_size: int = 32) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM of posterior-mean reconstructions."""
    model.eval()
    ps, ss = [], []
    for i in range(0, frames.shape[0], batch_size):
        x = frames[i : i + batch_size]
        x_hat = model(x, sample=False).reconstruction
        ps.append(psnr(x_hat, x))
        ss.append(ssim(x_hat, x))
    return float(torch.cat(ps).mean()), float(torch.cat(ss).mean())


class AutoencoderTrainer:
    """Model, discriminator, EMA and optimizers of stage 1, and one optimisation step."""

    def __init__(self, cfg: AutoencoderTrainConfig, info: DistInfo = SINGLE) -> None:
        check_batch("AutoencoderTrainConfig", cfg.batch_size, info)
        self.cfg = cfg
        self.device = info.device
        torch.manual_seed(cfg.seed)
        self.model = Autoencoder(cfg.model).to(self.device)
        self.disc = PatchDiscriminator(cfg.model.in_channels, cfg.discriminator).to(self.device)
        self.ema = EMA(self.model, decay=cfg.ema_decay)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        self.opt_disc = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9))
        # gradients averaged over ranks; the generator's GAN term goes through the plain (frozen) self.disc
        self.model_net = wrap_ddp(self.model, info)
        self.disc_net = wrap_ddp(self.disc, info)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"autoencoder": self.model, "ema": self.ema, "discriminator": self.disc}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"autoencoder": self.opt, "discriminator": self.opt_disc}

    def step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> StepLosses:
        cfg = self.cfg
        factor = lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        for opt, base in ((self.opt, cfg.lr), (self.opt_disc, cfg.disc_lr)):
            for group in opt.param_groups:
                group["lr"] = base * factor
        self.model.train()
        x = x.to(self.device)
        out = self.model_net(x, sample=True, generator=generator)
        rec = reconstruction_loss(out.reconstruction, x, cfg.gradient_weight)
        kl = kl_loss(out.posterior, x[0].numel())
        total = rec + cfg.kl_weight * kl
        use_gan = step >= cfg.disc_start and cfg.disc_weight > 0
        gan = torch.zeros(())
        weight = torch.zeros(())
        if use_gan:
            for p in self.disc.parameters():
                p.requires_grad_(False)
            gan = generator_loss(self.disc(out.reconstruction))
            weight = adaptive_gan_weight(rec, gan, self.model.decoder.last_layer_weight)
            total = total + cfg.disc_weight * weight * gan
            for p in self.disc.parameters():
                p.requires_grad_(True)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.ema.update(self.model)
        disc = torch.zeros(())
        if use_gan:
            disc = hinge_discriminator_loss(self.disc_net(x), self.disc_net(out.reconstruction.detach()))
            self.opt_disc.zero_grad(set_to_none=True)
            disc.backward()
            self.opt_disc.step()
        return StepLosses(
            total=float(total.detach()),
            rec=float(rec.detach()),
            kl=float(kl.detach()),
            gan=float(gan.detach()),
            gan_weight=float(weight),
            disc=float(disc.detach()),
        )


def train(cfg: AutoencoderTrainConfig, after_step: Callable[[int], None] | None = None) -> AutoencoderTrainResult:
    """Train (or resume) stage 1 and export the EMA model to `cfg.model_dir`.

    `after_step(step)` is called after every completed step (tests use it to interrupt).
    """
    torch.set_num_threads(cfg.num_threads)
    info = init_distributed("cpu")
    check_batch("AutoencoderTrainConfig", cfg.batch_size, info)
    run_dir, model_dir = Path(cfg.run_dir), Path(cfg.model_dir)
    train_bank: ClipFrames | None = None
    if cfg.data_format == "dir":
        train_bank = load_clip_frames(cfg.dataset, "train", cfg.height, cfg.width, cfg.max_clips)
        val_bank = load_clip_frames(cfg.dataset, ("val", "test"), cfg.height, cfg.width, None)
        val_x = evaluation_frames(val_bank, cfg.val_frames)
        if info.is_main:
            print(f"autoencoder: {train_bank.frames.shape[0]} train frames, {val_x.shape[0]} held-out frames")
    else:
        val_x = shard_frames(cfg, ("val", "test"), cfg.val_frames)

    trainer = AutoencoderTrainer(cfg, info)
    checkpointer = RunCheckpointer(run_dir, keep=3, enabled=info.is_main)
    restored = checkpointer.restore(trainer.modules(), trainer.optimizers())
    step = restored.step if restored else 0
    cpu_seconds = float(restored.extra.get("cpu_seconds", 0.0)) if restored else 0.0
    if restored and info.is_main:
        print(f"autoencoder: resumed from {restored.path} at step {step}")
    stream = None
    if train_bank is None:
        stream = ShardFrameStream(cfg, info, stream_start(cfg, step, restored.extra if restored else {}, info))
        if info.is_main:
            print(f"autoencoder: {stream.dataset.num_windows} train frames in shards, {val_x.shape[0]} held-out frames")
    log = LossLog(run_dir, resume_step=step + 1 if restored else None)  # keep rows <= the checkpoint step
    started, cpu_started = time.monotonic(), time.process_time()

    def save_checkpoint() -> None:  # every rank calls it: gathering the stream positions is a collective
        extra: dict[str, object] = {"cpu_seconds": cpu_seconds + time.process_time() - cpu_started}
        if stream is not None:
            extra["shard_positions"] = all_gather_objects(vars(stream.position()), info)  # in rank order
        checkpointer.save(step, trainer.modules(), trainer.optimizers(), extra=extra)
        if info.is_main:
            log.save()
            log.plot(run_dir / "losses.png", title="autoencoder")

    def next_frames(generator: torch.Generator) -> torch.Tensor:
        """This rank's rows of the global batch, (b / world_size, c, h, w)."""
        if train_bank is not None:
            return rank_rows(sample_frames(train_bank, cfg.batch_size, generator, cfg.hflip), info)
        x = stream.next()  # (b / world_size, c, h, w)
        if not cfg.hflip:
            return x
        flip = rank_rows(torch.rand(cfg.batch_size, generator=generator) < 0.5, info)  # (b / world_size,)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    bar = tqdm(total=cfg.max_steps, initial=step, desc="autoencoder", dynamic_ncols=True, disable=not info.is_main)
    while step < cfg.max_steps:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = next_frames(generator)  # drawn with the shared generator: the same global batch on every rank
        losses = trainer.step(x, step, rank_generator(generator, cfg.seed, step, info))
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            if info.distributed:  # a collective: every rank takes part
                mean = all_reduce_mean(torch.tensor(list(vars(losses).values()), dtype=torch.float64), info)
                losses = StepLosses(*mean.tolist())
            if info.is_main:
                log.log(step, **vars(losses))
                bar.set_postfix(rec=f"{losses.rec:.4f}", kl=f"{losses.kl:.1f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val_psnr, val_ssim = evaluate(trainer.ema.module, val_x)
            if info.is_main:
                log.log(step, val_psnr=val_psnr, val_ssim=val_ssim)
                bar.write(f"step {step}: held-out PSNR {val_psnr:.2f} dB, SSIM {val_ssim:.4f}")
        out_of_time = cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes
        if cfg.max_minutes is not None:
            out_of_time = any_rank(out_of_time, info)  # all ranks stop at once, when any is out of time
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or out_of_time:
            save_checkpoint()
        if after_step is not None:
            after_step(step)
        if out_of_time:
            bar.write(f"autoencoder: max_minutes={cfg.max_minutes} reached at step {step}")
            break
    bar.close()
    if stream is not None:
        stream.close()

    model = trainer.ema.module  # the same weights on every rank
    val_psnr, val_ssim = evaluate(model, val_x)
    if train_bank is not None:
        scale_x = evaluation_frames(train_bank, cfg.scale_frames)
    else:
        scale_x = shard_frames(cfg, ("train",), cfg.scale_frames)
    scale = compute_latent_scale(model, scale_x)
    model.latent_scale.fill_(scale)
    cpu_minutes = (cpu_seconds + time.process_time() - cpu_started) / 60.0
    extra = {
        "latent_scale": scale,
        "steps": step,
        "val_psnr": val_psnr,
        "val_ssim": val_ssim,
        "cpu_minutes": cpu_minutes,
        "image_size": [cfg.height, cfg.width],
        "dataset": str(cfg.dataset if cfg.data_format == "dir" else cfg.shards),
    }
    if info.is_main:
        save_stage(model_dir, AUTOENCODER_STAGE, model, cfg.model, extra=extra)
        print(
            f"autoencoder: step {step}, PSNR {val_psnr:.2f} dB, SSIM {val_ssim:.4f}, scale {scale:.4f} -> {model_dir}"
        )
    cleanup(info)
    return AutoencoderTrainResult(
        steps=step,
        val_psnr=val_psnr,
        val_ssim=val_ssim,
        latent_scale=scale,
        cpu_minutes=cpu_minutes,
        model_dir=model_dir,
    )
