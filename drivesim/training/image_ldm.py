"""Stage 3: train the conditional image LDM theta on cached latents (`drivesim train stage=image_ldm`).

Data: single frames of a latent cache (`drivesim data latents`), with the clip's time of day
and crowdedness and the frame's boxes; all of it is held in memory (`LatentFrames`).
Loss: the denoising loss of paper Eq. (1) with the eps or v target (``target``; default v,
whose regression target has unit variance at every noise level, so no noise level dominates
the loss, and whose x0 estimate stays bounded at high noise, which few-step DDIM relies on).
Conditions are dropped independently per sample (each label with ``label_drop``, all boxes
of a frame with ``box_drop``) so that classifier-free guidance works for any subset.
With ``box_weight`` > 1 the loss is a weighted mean in which latent cells under the frame's
boxes weigh box_weight (`drivesim/diffusion/box_loss_weight.py`).

Resumable: the batch of step k is a pure function of (seed, k) (`shard_batch_indices`), and
the noise, tau and condition drops come from a generator seeded by (seed, k, rank), so a
resumed run sees exactly what the uninterrupted run would. Run checkpoints (`RunCheckpointer`)
hold the UNet, its EMA, the optimizer and the RNG; rank 0 writes them, the loss log and plot,
previews, and at the end the EMA model as stage "image_ldm" of ``model_dir``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from drivesim.autoencoder.latent_cache import LatentWindowConfig, LatentWindowDataset, read_cache
from drivesim.diffusion.box_loss_weight import latent_box_weights
from drivesim.diffusion.conditioning import Conditioning, drop_conditions
from drivesim.diffusion.image_model import IMAGE_STAGE, ImageLDM, LatentGeometry
from drivesim.diffusion.parameterization import check_target, diffusion_loss
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import UNetConfig, count_parameters
from drivesim.diffusion.video_loading import config_from_dict
from drivesim.sampling.image import ImageGuidance, sample_image
from drivesim.training.checkpoint import save_stage
from drivesim.training.distributed import (
    DistInfo,
    all_reduce_mean,
    any_rank,
    autocast,
    barrier,
    cleanup,
    init_distributed,
    shard_batch_indices,
    wrap_ddp,
)
from drivesim.training.ema import EMA
from drivesim.training.logging import LossLog
from drivesim.training.run_state import RunCheckpointer
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


@dataclass
class ImageLDMTrainConfig:
    latent_cache: str = "data/world_latents"  # latent cache folder (drivesim data latents)
    run_dir: str = "runs/image_ldm"  # checkpoints/, losses.jsonl, losses.png, preview.png
    model_dir: str = "runs/models/default"  # EMA model written here as stage "image_ldm"
    init_from: str | None = None  # model folder whose image_ldm weights start a new run (fine-tuning)
    unet: dict[str, Any] = field(default_factory=dict)  # UNetConfig fields (conf/unet/*.yaml)
    schedule: dict[str, Any] = field(default_factory=dict)  # ScheduleConfig fields
    target: str = "v"  # "eps" | "v"
    split: str = "train"
    frame_step: int = 1  # use every k-th cached frame
    max_frames: int | None = None  # cap on training frames (None: all)
    max_boxes: int = 16  # largest boxes kept per frame
    label_drop: float = 0.1  # per label, per sample
    box_drop: float = 0.1  # all boxes of a sample
    box_weight: float = 1.0  # latent cells under a frame's boxes weigh this in the loss (box_loss_weight.py; 1 = off)
    batch_size: int = 32  # global batch (split over ranks)
    max_steps: int = 20000
    max_minutes: float | None = None  # wall-clock budget of this invocation
    max_cpu_minutes: float | None = None  # process CPU budget over all resumes (equal-cost comparisons)
    lr: float = 3e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    eval_every: int = 500
    log_every: int = 10
    val_frames: int = 128
    preview_every: int = 1000  # 0: no preview grids (they need the cache's autoencoder)
    preview_steps: int = 20
    preview_guidance: float = 3.0
    precision: str = "fp32"  # fp32 | bf16 | fp16 (CUDA)
    device: str = "auto"
    num_threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("frame_step", "max_boxes", "batch_size", "max_steps", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"ImageLDMTrainConfig.{name}={getattr(self, name)} must be >= 1")
        for name in ("label_drop", "box_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ImageLDMTrainConfig.{name}={getattr(self, name)} must be in [0, 1]")
        if not self.box_weight >= 1.0:
            raise ValueError(f"ImageLDMTrainConfig.box_weight={self.box_weight} must be >= 1 (1 = off)")
        if not self.lr > 0:
            raise ValueError(f"ImageLDMTrainConfig.lr={self.lr} must be > 0")
        check_target(self.target)
        self.unet_config()
        self.schedule_config()

    def unet_config(self) -> UNetConfig:
        return config_from_dict(UNetConfig, dict(self.unet), "ImageLDMTrainConfig.unet")

    def schedule_config(self) -> ScheduleConfig:
        return config_from_dict(ScheduleConfig, dict(self.schedule), "ImageLDMTrainConfig.schedule")


@dataclass(frozen=True)
class ImageLDMTrainResult:
    steps: int
    loss: float  # mean training loss over the last log interval
    val_loss: float  # EMA model, fixed taus and noise, held-out frames
    cpu_minutes: float
    model_dir: Path


@dataclass(frozen=True)
class LatentFrames:
    """n cached frames in memory. latents (n, C, h, w) scaled; labels (n,) long (-1 null);
    boxes (n, k, 4); box_classes (n, k); box_mask (n, k) bool; boxes_given (n,) bool."""

    latents: torch.Tensor
    time_of_day: torch.Tensor
    crowdedness: torch.Tensor
    boxes: torch.Tensor
    box_classes: torch.Tensor
    box_mask: torch.Tensor
    boxes_given: torch.Tensor
    latent_scale: float

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def conditioning(self, index: torch.Tensor) -> Conditioning:
        return Conditioning(
            time_of_day=self.time_of_day[index],
            crowdedness=self.crowdedness[index],
            boxes=self.boxes[index],
            box_classes=self.box_classes[index],
            box_mask=self.box_mask[index],
            boxes_given=self.boxes_given[index],
        )


def load_latent_frames(
    cache: str | Path,
    split: str | None,
    frame_step: int,
    max_boxes: int,
    unet: UNetConfig,
    max_frames: int | None = None,
    desc: str = "latent frames",
) -> LatentFrames:
    """Every `frame_step`-th frame of the cache's `split`. Labels the model has no embedding for
    (dawn_dusk, unknown) become null; boxes of classes it does not know are left out."""
    data = LatentWindowDataset(
        cache, LatentWindowConfig(num_frames=1, split=split, max_boxes=max_boxes, window_step=frame_step)
    )
    count = len(data) if max_frames is None else min(len(data), max_frames)
    order = np.linspace(0, len(data) - 1, num=count).round().astype(int) if count < len(data) else range(count)
    items = [data[int(i)] for i in tqdm(order, desc=desc, leave=False)]
    tod = torch.tensor([w.time_of_day for w in items], dtype=torch.long)
    crowd = torch.tensor([w.crowdedness for w in items], dtype=torch.long)
    classes = torch.stack([w.box_classes[0] for w in items])  # (n, k)
    mask = torch.stack([w.box_mask[0] for w in items]) & (classes < unet.num_box_classes)  # (n, k)
    return LatentFrames(
        latents=torch.stack([w.latents[0] for w in items]),  # (n, C, h, w)
        time_of_day=torch.where(tod < unet.num_time_of_day, tod, -1),
        crowdedness=torch.where(crowd < unet.num_crowdedness, crowd, -1),
        boxes=torch.stack([w.boxes[0] for w in items]).clamp(0.0, 1.0) * mask[..., None],  # (n, k, 4)
        box_classes=torch.where(mask, classes, 0),
        box_mask=mask,
        boxes_given=torch.tensor([bool(w.boxes_labelled[0]) for w in items]),
        latent_scale=data.latent_scale,
    )


def lr_factor(step: int, warmup: int, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay from 1 to `min_ratio` at `max_steps`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


VAL_TAUS: tuple[int, ...] = (25, 150, 300, 500, 700, 900)


@torch.no_grad()
def validation_loss(model: ImageLDM, frames: LatentFrames, seed: int = 1234, batch_size: int = 64) -> float:
    """Mean loss over the frames at the fixed diffusion times VAL_TAUS with fixed noise."""
    model.eval()
    total, count = 0.0, 0
    device = model.device
    for tau_value in VAL_TAUS:
        generator = torch.Generator().manual_seed(seed + tau_value)
        for i in range(0, len(frames), batch_size):
            index = torch.arange(i, min(i + batch_size, len(frames)))
            x0 = frames.latents[index].to(device)
            tau = torch.full((len(index),), tau_value, dtype=torch.long, device=device)
            out = model.loss(x0, frames.conditioning(index).to(device), generator, tau=tau)
            total += float(out.per_sample.sum())
            count += len(index)
    return total / max(1, count)


def preview_grid(model: ImageLDM, autoencoder_folder: Path, steps: int, guidance: float, seed: int) -> np.ndarray:
    """uint8 (2 h, 3 w, 3) grid: rows day/night, columns low/medium/high crowdedness, boxes unknown."""
    from einops import rearrange

    from drivesim.autoencoder.loading import load_autoencoder

    autoencoder = load_autoencoder(autoencoder_folder).to(model.device)
    tod = [t for t in TIME_OF_DAY for _ in CROWDEDNESS]
    crowd = [c for _ in TIME_OF_DAY for c in CROWDEDNESS]
    cond = Conditioning.from_labels(tod, crowd, [None] * len(tod), [None] * len(tod))
    z = sample_image(model, cond, steps, ImageGuidance.uniform(guidance), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        x = autoencoder.decode(z / model.latent.scale).clamp(-1, 1)  # (6, 3, H, W)
    x = ((x + 1) * 127.5).round().to(torch.uint8).cpu()
    return rearrange(x, "(r c) ch h w -> (r h) (c w) ch", r=len(TIME_OF_DAY)).numpy()  # (2 H, 3 W, 3)


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def init_weights(model: ImageLDM, ema: EMA, folder: Path) -> None:
    """Start from the image_ldm stage of `folder` (same UNet config required); the EMA starts there too."""
    source = ImageLDM.from_folder(folder)
    if source.unet.config != model.unet.config:
        raise ValueError(
            f"init_from={str(folder)!r} has UNetConfig {source.unet.config}, this run {model.unet.config}"
        )
    model.unet.load_state_dict(source.unet.state_dict())
    ema.module.load_state_dict(source.unet.state_dict())
    print(f"image_ldm: initialised from {folder} (latent scale {source.latent.scale:.4f} there)")


def _sample_batch(
    frames: LatentFrames, cfg: ImageLDMTrainConfig, step: int, info: DistInfo
) -> tuple[torch.Tensor, Conditioning, torch.Tensor | None, torch.Generator]:
    """This rank's latents (b, C, h, w), their conditioning after dropping, the loss weights
    (b, 1, h, w) from the frames' true boxes when cfg.box_weight > 1 (else None), the generator."""
    index = torch.tensor(shard_batch_indices(len(frames), cfg.batch_size, step, info, cfg.seed))
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 1009 + info.rank)
    full = frames.conditioning(index)
    x0 = frames.latents[index]
    weight = None
    if cfg.box_weight > 1.0:
        weight = latent_box_weights(full.boxes, full.box_mask, x0.shape[-2], x0.shape[-1], cfg.box_weight)
        weight = weight.to(info.device)
    cond = drop_conditions(full, generator, cfg.label_drop, cfg.box_drop)
    return x0.to(info.device), cond.to(info.device), weight, generator


def train(cfg: ImageLDMTrainConfig, after_step: Callable[[int], None] | None = None) -> ImageLDMTrainResult:
    """Train (or resume) the image LDM and export the EMA model to `cfg.model_dir`.

    `after_step(step)` is called after every completed step (tests use it to interrupt).
    """
    torch.set_num_threads(cfg.num_threads)
    info = init_distributed(cfg.device)
    run_dir, model_dir = Path(cfg.run_dir), Path(cfg.model_dir)
    unet_cfg, schedule_cfg = cfg.unet_config(), cfg.schedule_config()
    frames = load_latent_frames(cfg.latent_cache, cfg.split, cfg.frame_step, cfg.max_boxes, unet_cfg, cfg.max_frames)
    if len(frames) < cfg.batch_size:
        raise ValueError(f"latent cache {cfg.latent_cache} has {len(frames)} frames, fewer than batch_size")
    try:
        val = load_latent_frames(cfg.latent_cache, "val", 7, cfg.max_boxes, unet_cfg, cfg.val_frames, "val frames")
    except ValueError:
        val = load_latent_frames(cfg.latent_cache, cfg.split, 97, cfg.max_boxes, unet_cfg, cfg.val_frames)
    _, channels, height, width = frames.latents.shape
    torch.manual_seed(cfg.seed)
    model = ImageLDM.build(
        unet_cfg, schedule_cfg, cfg.target, LatentGeometry(channels, height, width, frames.latent_scale), cfg.max_boxes
    ).to(info.device)
    ddp_unet = wrap_ddp(model.unet, info)
    ema = EMA(model.unet, decay=cfg.ema_decay)
    ema_model = ImageLDM(ema.module, model.schedule, model.target, model.latent, model.max_boxes)
    opt = torch.optim.AdamW(model.unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules, optimizers = {"unet": model.unet, "ema": ema}, {"unet": opt}
    checkpointer = RunCheckpointer(run_dir, keep=3, enabled=info.is_main)
    restored = checkpointer.restore(modules, optimizers)
    if restored is None and cfg.init_from is not None:
        init_weights(model, ema, Path(cfg.init_from))
    step = restored.step if restored else 0
    cpu_seconds = float(restored.extra.get("cpu_seconds", 0.0)) if restored else 0.0
    # rows are labelled with the number of completed steps, so the checkpoint's own step is kept
    log = LossLog(run_dir, resume_step=step + 1 if restored else None)
    if info.is_main:
        print(
            f"image_ldm: {len(frames)} train frames, {len(val)} held-out, latents {channels}x{height}x{width}, "
            f"UNet {count_parameters(model.unet) / 1e6:.2f}M ({unet_cfg.box_conditioning}), target {cfg.target}"
            + (f"; resumed at step {step} from {restored.path}" if restored else "")
        )
    started, cpu_started = time.monotonic(), time.process_time()
    source = str(read_cache(cfg.latent_cache)[0].get("checkpoint") or "")
    autoencoder_folder = Path(source) if source and Path(source, "autoencoder.safetensors").is_file() else None

    def spent_cpu() -> float:
        return cpu_seconds + time.process_time() - cpu_started

    def save_checkpoint() -> None:
        checkpointer.save(step, modules, optimizers, extra={"cpu_seconds": spent_cpu()})
        if info.is_main:
            log.save()
            log.plot(run_dir / "losses.png", title=f"image_ldm ({unet_cfg.box_conditioning}, {cfg.target})")

    bar = tqdm(total=cfg.max_steps, initial=step, desc="image_ldm", dynamic_ncols=True, disable=not info.is_main)
    recent: list[float] = []
    while step < cfg.max_steps:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        x0, cond, weight, generator = _sample_batch(frames, cfg, step, info)
        model.unet.train()
        with autocast(info.device, cfg.precision):
            out = diffusion_loss(ddp_unet, x0, cond, model.schedule, generator, model.target, weight=weight)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.unet.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(model.unet)
        step += 1
        bar.update(1)
        recent.append(float(all_reduce_mean(out.loss, info)))
        if step % cfg.log_every == 0:
            loss = float(np.mean(recent[-cfg.log_every :]))
            log.log(step, loss=loss, grad_norm=float(grad_norm), lr=opt.param_groups[0]["lr"])
            bar.set_postfix(loss=f"{loss:.4f}")
        if info.is_main and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            val_loss = validation_loss(ema_model, val)
            log.log(step, val_loss=val_loss)
            bar.write(f"step {step}: held-out loss (EMA) {val_loss:.4f}, cpu {spent_cpu() / 60:.1f} min")
        if info.is_main and cfg.preview_every and step % cfg.preview_every == 0 and autoencoder_folder:
            grid = preview_grid(ema_model, autoencoder_folder, cfg.preview_steps, cfg.preview_guidance, cfg.seed)
            _write_png(run_dir / "preview.png", grid)
        out_of_time = (cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes) or (
            cfg.max_cpu_minutes is not None and spent_cpu() > 60 * cfg.max_cpu_minutes
        )
        if cfg.max_minutes is not None or cfg.max_cpu_minutes is not None:
            out_of_time = any_rank(out_of_time, info)  # all ranks stop at the same step (else an all-reduce hangs)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or out_of_time:
            save_checkpoint()
        if after_step is not None:
            after_step(step)
        if out_of_time:
            bar.write(f"image_ldm: time budget reached at step {step}")
            break
    bar.close()
    val_loss = validation_loss(ema_model, val)
    cpu_minutes = spent_cpu() / 60.0
    if info.is_main:
        extra = ema_model.stage_extra() | {
            "steps": step,
            "val_loss": val_loss,
            "cpu_minutes": cpu_minutes,
            "latent_cache": str(cfg.latent_cache),
            "label_drop": cfg.label_drop,
            "box_drop": cfg.box_drop,
            "box_weight": cfg.box_weight,
            "batch_size": cfg.batch_size,
            "init_from": cfg.init_from,  # None: trained from scratch
        }
        save_stage(model_dir, IMAGE_STAGE, ema.module, ema_model.stage_config(), extra=extra)
        print(f"image_ldm: step {step}, held-out loss {val_loss:.4f}, {cpu_minutes:.1f} CPU-min -> {model_dir}")
    barrier(info)
    cleanup(info)
    return ImageLDMTrainResult(
        steps=step,
        loss=float(np.mean(recent[-cfg.log_every :])) if recent else float("nan"),
        val_loss=val_loss,
        cpu_minutes=cpu_minutes,
        model_dir=model_dir,
    )

