"""Stage 2: fine-tune the temporal decoder on clips (`drivesim train stage=temporal_decoder`).

Video LDM Sec. 3.1.1: temporal layers are inserted into the image decoder and trained on
video with a 3-D-conv patch discriminator while the encoder stays frozen, so the
latent space the diffusion models live in does not move. Loss per clip x (b, t, c, H, W):
    L1 + gradient_weight * Sobel-L1 + temporal_weight * L1(frame differences)
    + [step >= disc_start] disc_weight * lambda * (-D3d(x_hat))
where x_hat decodes the frozen encoder's latents, optionally with frame-independent noise added
(`latent_noise`, drivesim/autoencoder/latent_noise.py: generated latents are not consistent from
frame to frame, encoded real ones are; the target stays the clean clip). With `box_weight` > 1 the
L1 and Sobel terms are weighted means in which pixels inside the clips' annotated boxes weigh
box_weight (drivesim/autoencoder/box_masks.py: small cars are what a blurring decoder loses).
`init_from` starts a new run from another model folder's temporal_decoder stage (fine-tuning;
its configs must match this run's), instead of from the autoencoder's image decoder.
The temporal layers and blend factors train at `lr`; with `train_spatial` (default) the
spatial decoder layers are fine-tuned too, at the much smaller `spatial_lr`. With
`train_spatial=False` setting every alpha to 1 still gives the stage-1 image decoder. The EMA weights are
exported as stage "temporal_decoder" of `model_dir` (next to its "autoencoder" stage).

Under torchrun (gloo, on CPU) every rank draws the global batch of clips that one process would
draw at that step and trains on its rows of it, with its own noise (seeded by (seed, step, rank));
DistributedDataParallel averages the decoder's and the discriminator's gradients (the adaptive
GAN weight is each rank's own); rank 0 writes checkpoints, the loss log and the exported stage.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from einops import rearrange
from tqdm import tqdm

from drivesim.autoencoder.box_masks import pixel_weights
from drivesim.autoencoder.config import TemporalDecoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig, PatchDiscriminator3d
from drivesim.autoencoder.frame_bank import load_clip_frames
from drivesim.autoencoder.latent_noise import LatentNoiseConfig, perturb_latents
from drivesim.autoencoder.loading import TEMPORAL_DECODER_STAGE, load_autoencoder, load_temporal_decoder
from drivesim.autoencoder.losses import (
    adaptive_gan_weight,
    generator_loss,
    hinge_discriminator_loss,
    reconstruction_loss,
    temporal_difference_loss,
)
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder
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
from drivesim.training.temporal_decoder_data import (
    VideoQuality,
    encode_clips,
    evaluation_clips,
    sample_clips,
    video_quality,
)


@dataclass
class TemporalDecoderTrainConfig:
    dataset: str = "data/world"
    run_dir: str = "runs/temporal_decoder"
    model_dir: str = "runs/models/default"  # holds the "autoencoder" stage; "temporal_decoder" is added
    temporal: TemporalDecoderConfig = field(default_factory=TemporalDecoderConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    latent_noise: LatentNoiseConfig = field(default_factory=LatentNoiseConfig)  # off by default
    init_from: str | None = None  # model folder whose temporal_decoder stage starts a new run (not a resume)
    height: int = 64
    width: int = 128
    max_clips: int | None = None
    num_frames: int = 8  # frames per training clip
    batch_size: int = 2  # clips per step
    max_steps: int = 1000
    max_minutes: float | None = None
    lr: float = 1e-3  # temporal layers and blend factors
    spatial_lr: float = 3e-5  # spatial decoder layers, when train_spatial
    disc_lr: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    gradient_weight: float = 0.5
    box_weight: float = 1.0  # weight of pixels inside annotated boxes in the L1 / Sobel terms (1 = off)
    temporal_weight: float = 10.0
    disc_start: int = 700
    disc_weight: float = 0.1
    train_spatial: bool = True
    sample_posterior: bool = True
    hflip: bool = True
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    eval_every: int = 100
    log_every: int = 10
    val_clips: int = 8
    val_frames: int = 16
    num_threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("height", "width", "batch_size", "max_steps", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TemporalDecoderTrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.num_frames < 2:
            raise ValueError(f"TemporalDecoderTrainConfig.num_frames={self.num_frames} must be >= 2")
        if not self.box_weight >= 1.0:
            raise ValueError(f"TemporalDecoderTrainConfig.box_weight={self.box_weight} must be >= 1 (1 = off)")


@dataclass(frozen=True)
class TemporalDecoderTrainResult:
    steps: int
    image_decoder: VideoQuality
    temporal_decoder: VideoQuality
    alphas: dict[str, float]
    cpu_minutes: float
    model_dir: Path


@dataclass(frozen=True)
class StepLosses:
    total: float
    rec: float
    temporal: float
    gan: float
    gan_weight: float
    disc: float


class TemporalDecoderTrainer:
    """Frozen autoencoder, trainable temporal decoder, 3-D discriminator, EMA, optimizers."""

    def __init__(self, cfg: TemporalDecoderTrainConfig, autoencoder: Autoencoder, info: DistInfo = SINGLE) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.autoencoder = autoencoder.eval()
        for p in self.autoencoder.parameters():
            p.requires_grad_(False)
        self.decoder = TemporalDecoder.from_autoencoder(autoencoder, cfg.temporal)
        if not cfg.train_spatial:
            for p in self.decoder.decoder.parameters():
                p.requires_grad_(False)
        self.disc = PatchDiscriminator3d(autoencoder.cfg.in_channels, cfg.discriminator)
        self.ema = EMA(self.decoder, decay=cfg.ema_decay)
        groups = [{"params": self.decoder.temporal_parameters(), "base_lr": cfg.lr}]
        if cfg.train_spatial:
            groups.append({"params": list(self.decoder.decoder.parameters()), "base_lr": cfg.spatial_lr})
        self.opt = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.5, 0.9))
        self.opt_disc = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9))
        # gradients averaged over ranks; the generator's GAN term goes through the plain (frozen) self.disc
        self.decoder_net = wrap_ddp(self.decoder, info)
        self.disc_net = wrap_ddp(self.disc, info)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"temporal_decoder": self.decoder, "ema": self.ema, "discriminator": self.disc}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"temporal_decoder": self.opt, "discriminator": self.opt_disc}

    def last_layer(self) -> torch.Tensor:
        if self.cfg.train_spatial:
            return self.decoder.decoder.last_layer_weight
        return self.decoder.last_temporal_weight

    def load_decoder(self, folder: Path) -> None:
        """Start from `folder`'s temporal_decoder stage (decoder and EMA); its configs must match this run's."""
        source = load_temporal_decoder(folder)
        for name, own, theirs in (
            ("autoencoder", self.decoder.ae_cfg, source.ae_cfg),
            ("temporal", self.decoder.cfg, source.cfg),
        ):
            if own != theirs:
                raise ValueError(f"init_from={str(folder)!r}: its {name} config {theirs} differs from this run's {own}")
        state = source.state_dict()
        self.decoder.load_state_dict(state)
        self.ema.module.load_state_dict(state)

    def step(
        self, video: torch.Tensor, step: int, generator: torch.Generator, masks: torch.Tensor | None = None
    ) -> StepLosses:
        """One update on clips `video` (b, t, 3, H, W); `masks` (b, t, H, W) bool marks box pixels
        (weighted by cfg.box_weight in the reconstruction loss; ignored when box_weight is 1)."""
        cfg = self.cfg
        factor = lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        for group in self.opt.param_groups:
            group["lr"] = group["base_lr"] * factor
        for group in self.opt_disc.param_groups:
            group["lr"] = cfg.disc_lr * factor
        b, t = video.shape[:2]
        with torch.no_grad():
            posterior = self.autoencoder.encode(rearrange(video, "b t c h w -> (b t) c h w"))
            z = posterior.sample(generator) if cfg.sample_posterior else posterior.mode()  # (b t) C h w
            z = rearrange(z, "(b t) c h w -> b t c h w", b=b)
            # frame-independent noise (latent_noise.py): the decoder learns to hide it, the target stays clean
            z = perturb_latents(z, float(self.autoencoder.latent_scale), cfg.latent_noise, generator)
        self.decoder.train()
        decoded = self.decoder_net(z)  # b t 3 H W
        frames_hat = rearrange(decoded, "b t c h w -> (b t) c h w")
        weight = None
        if masks is not None and cfg.box_weight > 1.0:
            weight = pixel_weights(rearrange(masks, "b t h w -> (b t) h w"), cfg.box_weight)  # (b t) 1 H W
        rec = reconstruction_loss(frames_hat, rearrange(video, "b t c h w -> (b t) c h w"), cfg.gradient_weight, weight)
        temporal = temporal_difference_loss(decoded, video)
        total = rec + cfg.temporal_weight * temporal
        use_gan = step >= cfg.disc_start and cfg.disc_weight > 0
        gan, weight, disc = torch.zeros(()), torch.zeros(()), torch.zeros(())
        if use_gan:
            for p in self.disc.parameters():
                p.requires_grad_(False)
            gan = generator_loss(self.disc(decoded))
            weight = adaptive_gan_weight(total, gan, self.last_layer())
            total = total + cfg.disc_weight * weight * gan
            for p in self.disc.parameters():
                p.requires_grad_(True)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.ema.update(self.decoder)
        if use_gan:
            disc = hinge_discriminator_loss(self.disc_net(video), self.disc_net(decoded.detach()))
            self.opt_disc.zero_grad(set_to_none=True)
            disc.backward()
            self.opt_disc.step()
        return StepLosses(
            total=float(total.detach()),
            rec=float(rec.detach()),
            temporal=float(temporal.detach()),
            gan=float(gan.detach()),
            gan_weight=float(weight),
            disc=float(disc.detach()),
        )


def train(
    cfg: TemporalDecoderTrainConfig, after_step: Callable[[int], None] | None = None
) -> TemporalDecoderTrainResult:
    """Fine-tune (or resume) the temporal decoder and export the EMA model to `cfg.model_dir`."""
    torch.set_num_threads(cfg.num_threads)
    info = init_distributed("cpu")
    check_batch("TemporalDecoderTrainConfig", cfg.batch_size, info)
    run_dir, model_dir = Path(cfg.run_dir), Path(cfg.model_dir)
    autoencoder = load_autoencoder(model_dir)
    autoencoder.cfg.latent_size(cfg.height, cfg.width)
    train_bank = load_clip_frames(
        cfg.dataset, "train", cfg.height, cfg.width, cfg.max_clips, box_masks=cfg.box_weight > 1.0
    )
    val_bank = load_clip_frames(cfg.dataset, ("val", "test"), cfg.height, cfg.width, None)
    val_video = evaluation_clips(val_bank, cfg.val_clips, cfg.val_frames)
    val_latents = encode_clips(autoencoder, val_video)
    image_quality = video_quality(autoencoder.decode_video(val_latents, scaled=False), val_video)
    if info.is_main:
        print(
            f"temporal_decoder: {train_bank.num_clips} train clips, {val_video.shape[0]} held-out clips; "
            f"image decoder PSNR {image_quality.psnr:.2f} dB, flicker {image_quality.flicker:.3f}"
        )

    trainer = TemporalDecoderTrainer(cfg, autoencoder, info)
    checkpointer = RunCheckpointer(run_dir, keep=3, enabled=info.is_main)
    restored = checkpointer.restore(trainer.modules(), trainer.optimizers())
    step = restored.step if restored else 0
    cpu_seconds = float(restored.extra.get("cpu_seconds", 0.0)) if restored else 0.0
    if restored and info.is_main:
        print(f"temporal_decoder: resumed from {restored.path} at step {step}")
    if restored is None and cfg.init_from is not None:
        trainer.load_decoder(Path(cfg.init_from))
        if info.is_main:
            print(f"temporal_decoder: initialised from {cfg.init_from}")
    log = LossLog(run_dir, resume_step=step + 1 if restored else None)  # keep rows <= the checkpoint step
    started, cpu_started = time.monotonic(), time.process_time()

    def evaluate() -> VideoQuality:
        model = trainer.ema.module.eval()
        return video_quality(model.decode_video(val_latents, scaled=False), val_video)

    bar = tqdm(total=cfg.max_steps, initial=step, desc="temporal_decoder", dynamic_ncols=True, disable=not info.is_main)
    while step < cfg.max_steps:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        batch = sample_clips(train_bank, cfg.batch_size, cfg.num_frames, generator, cfg.hflip)  # the global batch
        generator = rank_generator(generator, cfg.seed, step, info)
        masks = rank_rows(batch.masks, info) if batch.masks is not None else None
        losses = trainer.step(rank_rows(batch.video, info), step, generator, masks)  # this rank's rows
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            if info.distributed:  # a collective: every rank takes part
                mean = all_reduce_mean(torch.tensor(list(vars(losses).values()), dtype=torch.float64), info)
                losses = StepLosses(*mean.tolist())
            if info.is_main:
                log.log(step, **vars(losses))
                bar.set_postfix(rec=f"{losses.rec:.4f}", temporal=f"{losses.temporal:.4f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            q = evaluate()
            if info.is_main:
                log.log(step, val_psnr=q.psnr, val_ssim=q.ssim, val_flicker=q.flicker)
                bar.write(f"step {step}: held-out PSNR {q.psnr:.2f} dB, flicker {q.flicker:.3f}")
        out_of_time = cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes
        if cfg.max_minutes is not None:
            out_of_time = any_rank(out_of_time, info)  # all ranks stop at once, when any is out of time
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or out_of_time:
            spent = cpu_seconds + time.process_time() - cpu_started
            checkpointer.save(step, trainer.modules(), trainer.optimizers(), extra={"cpu_seconds": spent})
            if info.is_main:
                log.save()
                log.plot(run_dir / "losses.png", title="temporal decoder")
        if after_step is not None:
            after_step(step)
        if out_of_time:
            bar.write(f"temporal_decoder: max_minutes={cfg.max_minutes} reached at step {step}")
            break
    bar.close()

    model = trainer.ema.module.eval()
    quality = evaluate()
    cpu_minutes = (cpu_seconds + time.process_time() - cpu_started) / 60.0
    config = {
        "autoencoder": dataclasses.asdict(autoencoder.cfg),
        "temporal": dataclasses.asdict(cfg.temporal),
    }
    extra = {
        "latent_scale": float(autoencoder.latent_scale),
        "steps": step,
        "val": dataclasses.asdict(quality),
        "val_image_decoder": dataclasses.asdict(image_quality),
        "alphas": model.alphas(),
        "cpu_minutes": cpu_minutes,
        "num_frames": cfg.num_frames,
        "dataset": str(cfg.dataset),
        "box_weight": cfg.box_weight,
        "init_from": cfg.init_from,
    }
    if info.is_main:
        save_stage(model_dir, TEMPORAL_DECODER_STAGE, model, config, extra=extra)
        print(
            f"temporal_decoder: step {step}: PSNR {quality.psnr:.2f} dB "
            f"(image decoder {image_quality.psnr:.2f}), "
            f"flicker {quality.flicker:.3f} (image decoder {image_quality.flicker:.3f}) -> {model_dir}"
        )
    cleanup(info)
    return TemporalDecoderTrainResult(
        steps=step,
        image_decoder=image_quality,
        temporal_decoder=quality,
        alphas=model.alphas(),
        cpu_minutes=cpu_minutes,
        model_dir=model_dir,
    )
