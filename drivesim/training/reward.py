"""Train the reward heads on a latent cache (`drivesim train stage=reward`).

Samples: pairs of keyframe latents `stride` frames apart with the ground-truth events
(collision, off-road) and ego speed (and, for a model with `pose`, lateral offset and heading) at
the newer one. Losses: BCE on both events (positive class weighted, events are rare), L1 on
speed / speed_scale and, with `pose`, `pose_weight` x L1 on offset (lane widths) and heading /
heading_scale. Batches are drawn with a
generator seeded by (seed, step), so a resumed run draws exactly the batches the
uninterrupted run would. The EMA weights are exported as stage `stage` of `model_dir`, with
held-out (val split) metrics in its `extra`: "reward" (the heads the env reads events and speed
from) or "pose" (heads with `pose` that the env reads only the lateral offset and heading from,
beside the "reward" heads; docs/results.md, Reward heads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from drivesim.autoencoder.latent_cache import LatentWindowConfig, LatentWindowDataset, collate_latent_windows
from drivesim.eval.adherence import r_squared
from drivesim.model_folder import save_stage
from drivesim.rollout.reward_model import RewardModel, RewardModelConfig, RewardPrediction
from drivesim.training.distributed import (
    all_reduce_mean,
    cleanup,
    init_distributed,
    shard_batch_indices,
    unwrap,
    wrap_ddp,
)
from drivesim.training.ema import EMA
from drivesim.training.logging import LossLog
from drivesim.training.run_state import RunCheckpointer

REWARD_STAGE = "reward"
POSE_STAGE = "pose"
STAGES: tuple[str, ...] = (REWARD_STAGE, POSE_STAGE)


@dataclass
class RewardTrainConfig:
    latents: str = "runs/latents/world"  # latent cache folder
    run_dir: str = "runs/reward"
    model_dir: str = "runs/models/default"
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    stride: int = 4  # frames between the two keyframes (the keyframe interval)
    batch_size: int = 64
    max_steps: int = 1500
    lr: float = 1e-3
    ema_decay: float = 0.99
    checkpoint_every: int = 250
    log_every: int = 10
    max_val_windows: int = 2000
    val_split: str = "val"  # split the exported metrics are measured on
    pose_weight: float = 1.0  # weight of the pose losses (a model with `pose`)
    stage: str = REWARD_STAGE  # model-folder stage written: "reward" or "pose" (needs model.pose)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("stride", "batch_size", "max_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"RewardTrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.stage not in STAGES:
            raise ValueError(f"RewardTrainConfig.stage={self.stage!r}; allowed: {list(STAGES)}")
        if self.stage == POSE_STAGE and not self.model.pose:
            raise ValueError("RewardTrainConfig.stage='pose' needs model.pose=true (heads that read the pose)")


def _windows(cfg: RewardTrainConfig, split: str) -> LatentWindowDataset:
    wcfg = LatentWindowConfig(num_frames=cfg.model.num_frames, stride=cfg.stride, split=split, window_step=1)
    return LatentWindowDataset(cfg.latents, wcfg)


def _batch(ds: LatentWindowDataset, idx: list[int], device: torch.device):
    """latents (b, t, c, h, w), events (b, 2), speed (b,), pose (b, 2) at the newest frame."""
    b = collate_latent_windows([ds[i] for i in idx])
    events = b.events[:, -1].float().to(device)  # b 2
    return b.latents.to(device), events, b.ego_speed[:, -1].float().to(device), b.ego_pose[:, -1].float().to(device)


def reward_losses(
    pred: RewardPrediction, events: torch.Tensor, speed: torch.Tensor, pos_weight: torch.Tensor,
    config: RewardModelConfig, pose: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """BCE collision, BCE off-road, L1 speed / speed_scale, L1 pose (zero without `pose`)."""
    col = F.binary_cross_entropy_with_logits(pred.collision_logit, events[:, 0], pos_weight=pos_weight[0])
    off = F.binary_cross_entropy_with_logits(pred.off_road_logit, events[:, 1], pos_weight=pos_weight[1])
    spd = F.l1_loss(pred.speed / config.speed_scale, speed / config.speed_scale)
    if pred.lateral_offset is None or pose is None:
        return col, off, spd, torch.zeros((), device=spd.device)
    offset = F.l1_loss(pred.lateral_offset, pose[:, 0])
    heading = F.l1_loss(pred.heading / config.heading_scale, pose[:, 1] / config.heading_scale)
    return col, off, spd, offset + heading


@torch.no_grad()
def evaluate(model: RewardModel, ds: LatentWindowDataset, max_windows: int, device: torch.device) -> dict[str, float]:
    """Held-out metrics: event accuracy/recall/precision at p > 0.5, speed MAE (m/s) and R^2."""
    model.eval()
    n = min(len(ds), max_windows)
    g = torch.Generator().manual_seed(1234)
    order = torch.randperm(len(ds), generator=g)[:n].tolist()
    preds, trues, read, truth = [], [], [], []
    for k in range(0, n, 256):
        z, events, speed, pose = _batch(ds, order[k : k + 256], device)
        p = model(z)
        preds.append(torch.stack([p.collision, p.off_road], 1) > 0.5)
        trues.append(events > 0.5)
        pose_read = [] if p.lateral_offset is None else [p.lateral_offset, p.heading]
        read.append(torch.stack([p.speed, *pose_read], 1))
        truth.append(torch.cat([speed[:, None], pose], 1)[:, : read[-1].shape[1]])
    pred, true = torch.cat(preds), torch.cat(trues)
    out = {"val_windows": float(n)}
    read_all, truth_all = torch.cat(read).cpu().numpy(), torch.cat(truth).cpu().numpy()
    for j, (name, unit) in enumerate(zip(("speed", "lateral_offset", "heading"), ("mps", "lanes", "rad"))):
        if j < read_all.shape[1]:
            out[f"{name}_mae_{unit}"] = float(np.abs(read_all[:, j] - truth_all[:, j]).mean())
            r2 = r_squared(truth_all[:, j], read_all[:, j])  # None: a constant target
            out[f"{name}_r2"] = float("nan") if r2 is None else r2
    for j, name in enumerate(("collision", "off_road")):
        tp = float((pred[:, j] & true[:, j]).sum())
        out[f"{name}_accuracy"] = float((pred[:, j] == true[:, j]).float().mean())
        out[f"{name}_positives"] = float(true[:, j].sum())
        out[f"{name}_recall"] = tp / max(float(true[:, j].sum()), 1.0)
        out[f"{name}_precision"] = tp / max(float(pred[:, j].sum()), 1.0)
    return out


def train(cfg: RewardTrainConfig) -> dict[str, float]:
    info = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    train_ds, val_ds = _windows(cfg, "train"), _windows(cfg, cfg.val_split)
    model = RewardModel(cfg.model).to(info.device)
    ema = EMA(model, cfg.ema_decay)
    ddp = wrap_ddp(model, info)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ckpt = RunCheckpointer(Path(cfg.run_dir), enabled=info.is_main)
    restored = ckpt.restore({"model": model, "ema": ema}, {"opt": opt})
    step = restored.step if restored else 0
    log = LossLog(Path(cfg.run_dir), resume_step=step + 1 if restored else None)
    # Event frequencies from a sample of the train split set the positive-class weights.
    probe = [train_ds[i] for i in range(0, len(train_ds), max(1, len(train_ds) // 2000))]
    rate = torch.stack([w.events[-1].float() for w in probe]).mean(0).clamp(1e-3, 0.5)
    pos_weight = ((1 - rate) / rate).clamp(max=50.0).to(info.device)
    bar = tqdm(total=cfg.max_steps, initial=step, desc="reward", disable=not info.is_main)
    while step < cfg.max_steps:
        model.train()
        idx = shard_batch_indices(len(train_ds), cfg.batch_size, step, info, cfg.seed)
        z, events, speed, pose = _batch(train_ds, idx, info.device)
        col, off, spd, pos = reward_losses(ddp(z), events, speed, pos_weight, cfg.model, pose)
        loss = col + off + spd + cfg.pose_weight * pos
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            # a collective: every rank takes part, rank 0 logs
            vals = [float(all_reduce_mean(x, info)) for x in (loss, col, off, spd, pos)]
            if info.is_main:
                pose_log = {"pose_l1": vals[4]} if cfg.model.pose else {}
                log.log(step, loss=vals[0], collision_bce=vals[1], off_road_bce=vals[2], speed_l1=vals[3], **pose_log)
                bar.set_postfix(loss=f"{vals[0]:.3f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            ckpt.save(step, {"model": model, "ema": ema}, {"opt": opt}, extra={"step": step})
            if info.is_main:
                log.save()
                log.plot(Path(cfg.run_dir) / "losses.png", title="reward heads")
    bar.close()
    metrics = evaluate(ema.module, val_ds, cfg.max_val_windows, info.device)
    if info.is_main:
        extra = {"stride": cfg.stride, "val": metrics, "val_split": cfg.val_split, "steps": step}
        save_stage(Path(cfg.model_dir), cfg.stage, unwrap(ema.module), cfg.model, extra=extra)
        print({k: round(v, 4) for k, v in metrics.items()})
    cleanup(info)
    return metrics
