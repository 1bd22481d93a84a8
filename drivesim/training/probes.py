"""`drivesim train stage=probes`: train the frame and clip probes on procedural-world episodes.

The training episodes are rendered in memory from seeds TRAIN_SEED_BASE + i; the final
accuracy is measured on held-out seeds HELDOUT_SEED_BASE + i (see drivesim.eval.probe_data).
Resumable: `run_dir/checkpoints` (RunCheckpointer) holds modules, optimizers and the step;
batches are drawn from a generator seeded by (seed, step), so a resumed run sees the same
batches. The final probes go to `out` as stages `frame_probe` and `clip_probe`.

Under torchrun every rank draws the same global batches and trains on its own rows of them
(rows r * n / N .. (r + 1) * n / N); DistributedDataParallel averages the gradients (batch-norm
statistics are rank 0's); rank 0 writes checkpoints, logs, the held-out accuracy and the probes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from tqdm import tqdm

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.detection import center_loss, center_targets
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.eval.probe_accuracy import ProbeAccuracy, probe_accuracy
from drivesim.eval.probe_data import (
    HELDOUT_SEED_BASE,
    TRAIN_SEED_BASE,
    EpisodeConfig,
    Episodes,
    render_episodes,
)
from drivesim.eval.probe_io import FRAME_STAGE, Probes, load_frame_probe, load_probes, save_probes
from drivesim.eval.report import write_json
from drivesim.model_folder import load_stage
from drivesim.training.distributed import DistInfo, all_reduce_mean, cleanup, init_distributed, unwrap, wrap_ddp
from drivesim.training.logging import LossLog
from drivesim.training.probe_batches import (
    ClipBatch,
    FrameBatch,
    augment_video,
    mirror_clips,
    mirror_frames,
    sample_clips,
    sample_frames,
)
from drivesim.training.run_state import RunCheckpointer

LOGGED_PARTS = ("frame_loss", "clip_loss", "frame_det", "frame_crowd", "clip_steer", "clip_accel", "clip_speed")
CLIP_ROLES = ("clip", "action")
PLOT_EVERY = 1000  # steps between loss plots (and at the end)


@dataclass
class ProbeTrainConfig:
    out: str = "outputs/probes/model"  # model folder for the final probes
    run_dir: str = "outputs/probes/run"  # checkpoints, loss log and plot, accuracy JSON
    seed: int = 0
    train_episodes: int = 360  # rendered from seeds TRAIN_SEED_BASE + i (60 per label pair)
    heldout_episodes: int = 48  # rendered from seeds HELDOUT_SEED_BASE + i for the final accuracy
    episode: EpisodeConfig = field(default_factory=lambda: EpisodeConfig(num_frames=96))
    frame: FrameProbeConfig = field(default_factory=FrameProbeConfig)
    clip: ClipProbeConfig = field(default_factory=ClipProbeConfig)
    steps: int = 4000
    frame_batch: int = 48
    clip_batch: int = 24
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    augment: bool = True  # mirroring, mild blur / noise / brightness jitter (probes judge content, not codec)
    # a probes folder whose frame probe is kept as it is (not trained; `frame` is then ignored), so
    # the clip probe can be retrained without moving any frame-probe metric; None trains both
    frame_from: str | None = None
    # a probes folder whose clip probe starts this one (fine-tuning, e.g. on pattern-driven episodes:
    # `episode.pattern_fraction`); None starts from random weights
    clip_from: str | None = None
    # "clip": the trained clip probe is the folder's clip probe; "action": it is saved as the folder's
    # action probe (stage action_probe, which action adherence reads with), and clip_from's clip probe
    # is kept as the clip probe, so FVD-probe features, labels and speed do not move
    clip_role: str = "clip"
    log_every: int = 25
    checkpoint_every: int = 250
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in (
            "train_episodes",
            "heldout_episodes",
            "steps",
            "frame_batch",
            "clip_batch",
            "log_every",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.clip_role not in CLIP_ROLES:
            raise ValueError(f"clip_role={self.clip_role!r} is not one of {CLIP_ROLES}")
        if self.clip_role == "action" and self.clip_from is None:
            raise ValueError("clip_role='action' fine-tunes a clip probe: set clip_from to a probes folder")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be > 0")
        if abs(self.clip.fps - self.episode.fps) > 1e-6:
            raise ValueError(f"clip.fps={self.clip.fps} must equal episode.fps={self.episode.fps}")
        if self.clip.span > self.episode.num_frames:
            raise ValueError(
                f"episode.num_frames={self.episode.num_frames} is shorter than one clip-probe window "
                f"({self.clip.span} frames)"
            )


@dataclass(frozen=True)
class ProbeTrainResult:
    out: Path
    run_dir: Path
    steps: int
    accuracy: ProbeAccuracy | None
    cpu_seconds: float


def frame_loss(probe: torch.nn.Module, batch: FrameBatch, device: str) -> tuple[torch.Tensor, dict[str, float]]:
    """probe: a FrameProbe, or its DistributedDataParallel wrapper."""
    config: FrameProbeConfig = unwrap(probe).config
    out = probe(batch.frames.to(device))
    grid_h, grid_w = out.heatmap_logits.shape[-2:]
    targets = center_targets(batch.boxes, grid_h, grid_w)
    parts = {
        "tod": F.cross_entropy(out.time_of_day_logits, batch.time_of_day.to(device)),
        "crowd": F.cross_entropy(out.crowdedness_logits, batch.crowdedness.to(device)),
        "count": F.smooth_l1_loss(out.vehicle_count / config.count_scale, batch.count.to(device) / config.count_scale),
        "det": center_loss(out.heatmap_logits, out.offset, out.log_size, targets),
    }
    return sum(parts.values()), {f"frame_{k}": v.item() for k, v in parts.items()}


@dataclass(frozen=True)
class ActionSpread:
    """Standard deviations (2,) of [steer, accel] targets: window means and per-pair means."""

    window: np.ndarray
    pair: np.ndarray


def action_spread(eps: Episodes, cfg: ClipProbeConfig) -> ActionSpread:
    """Spread of the clip-probe targets in `eps` (windows every `frame_stride` source frames)."""
    span, stride = cfg.span, cfg.frame_stride
    means = [eps.actions[:, s + 1 : s + span].mean(1) for s in range(0, eps.num_frames - span + 1, stride)]
    usable = (eps.num_frames - 1) // stride * stride
    pairs = rearrange(eps.actions[:, 1 : 1 + usable], "e (p s) k -> (e p) s k", s=stride).mean(1)
    return ActionSpread(
        window=np.concatenate(means).std(0).clip(1e-3, None),  # (2,)
        pair=pairs.std(0).clip(1e-3, None),  # (2,)
    )


def clip_loss(
    probe: torch.nn.Module, batch: ClipBatch, device: str, spread: ActionSpread
) -> tuple[torch.Tensor, dict[str, float]]:
    """Action errors are divided by the targets' spread (steer varies far less than accel), so both
    count equally, on the window means and (dense supervision) on every pair; the logged `steer` /
    `accel` values are the window parts (1 - R², roughly). probe: a ClipProbe, or its
    DistributedDataParallel wrapper."""
    out = probe(batch.clips.to(device))
    scale = unwrap(probe).config.speed_scale
    window_var = torch.as_tensor(spread.window**2, dtype=torch.float32, device=device)  # (2,)
    pair_var = torch.as_tensor(spread.pair**2, dtype=torch.float32, device=device)  # (2,)
    window = ((out.actions - batch.actions.to(device)) ** 2).mean(0) / window_var  # (2,)
    pair = ((out.pair_actions - batch.pair_actions.to(device)) ** 2).mean((0, 1)) / pair_var  # (2,)
    parts = {
        "steer": window[0],
        "accel": window[1],
        "pair_actions": 0.5 * pair.sum(),
        "speed": F.mse_loss(out.speed / scale, batch.speed.to(device) / scale) * 4.0,
        "pair_speed": F.mse_loss(out.pair_speed / scale, batch.pair_speed.to(device) / scale) * 4.0,
        "tod": 0.3 * F.cross_entropy(out.time_of_day_logits, batch.time_of_day.to(device)),
        "crowd": 0.3 * F.cross_entropy(out.crowdedness_logits, batch.crowdedness.to(device)),
    }
    return sum(parts.values()), {f"clip_{k}": v.item() for k, v in parts.items()}


def rank_rows(batch: FrameBatch | ClipBatch, info: DistInfo) -> FrameBatch | ClipBatch:
    """This rank's rows of a global batch: rows r * n / N .. (r + 1) * n / N."""
    if not info.distributed:
        return batch
    per = len(batch.time_of_day) // info.world_size
    rows = slice(info.rank * per, (info.rank + 1) * per)
    return dataclasses.replace(batch, **{f.name: getattr(batch, f.name)[rows] for f in dataclasses.fields(batch)})


def learning_rate(cfg: ProbeTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 2% of `lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(cfg: ProbeTrainConfig) -> ProbeTrainResult:
    """Train (or resume) both probes; the result's accuracy is None on ranks other than 0."""
    info = init_distributed("cuda" if cfg.device.startswith("cuda") else "cpu")
    device = str(info.device) if info.distributed else cfg.device
    for name in ("frame_batch", "clip_batch"):
        if getattr(cfg, name) % info.world_size:
            raise ValueError(
                f"ProbeTrainConfig.{name}={getattr(cfg, name)} must be divisible by world_size={info.world_size}"
            )
    run_dir, out_dir = Path(cfg.run_dir), Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cpu_start = time.process_time()
    torch.manual_seed(cfg.seed)
    train_frame = cfg.frame_from is None
    frame = (FrameProbe(cfg.frame) if train_frame else load_frame_probe(cfg.frame_from)).to(device)
    clip = ClipProbe(cfg.clip)
    if cfg.clip_from is not None:
        start_clip = load_probes(cfg.clip_from).clip
        if start_clip.config != cfg.clip:
            raise ValueError(
                f"clip_from={cfg.clip_from!r} holds a clip probe with config {start_clip.config}, not the configured "
                f"clip {cfg.clip}; set clip.* to match it (e.g. clip.num_frames) to fine-tune it"
            )
        clip.load_state_dict(start_clip.state_dict())
    clip = clip.to(device)
    frame_net = wrap_ddp(frame, info) if train_frame else frame  # gradients averaged over ranks
    clip_net = wrap_ddp(clip, info)
    opt_frame = torch.optim.AdamW(frame.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_clip = torch.optim.AdamW(clip.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules = {"frame_probe": frame, "clip_probe": clip}
    optimizers = {"frame_opt": opt_frame, "clip_opt": opt_clip}
    checkpointer = RunCheckpointer(run_dir, keep=2, enabled=info.is_main)
    restored = checkpointer.restore(modules, optimizers)
    start = restored.step if restored is not None else 0
    cpu_before = float(restored.extra.get("cpu_seconds", 0.0)) if restored is not None else 0.0
    # rows are labelled with the number of completed steps, so rows up to `start` are kept
    log = LossLog(run_dir, resume_step=start + 1 if restored is not None else None)

    def cpu_seconds() -> float:
        return cpu_before + time.process_time() - cpu_start

    if start < cfg.steps:
        episodes = render_episodes(cfg.episode, TRAIN_SEED_BASE, cfg.train_episodes, desc="render train episodes")
        spread = action_spread(episodes, cfg.clip)
        frame.train(train_frame)
        clip.train()
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="probes", disable=not info.is_main)
        for step in bar:
            rng = np.random.default_rng([cfg.seed, step])
            lr = learning_rate(cfg, step)
            for opt in (opt_frame, opt_clip):
                for group in opt.param_groups:
                    group["lr"] = lr
            scalars: dict[str, float] = {}
            if train_frame:
                fb = sample_frames(episodes, rng, cfg.frame_batch)
                if cfg.augment:
                    fb = mirror_frames(fb, rng.random(cfg.frame_batch) < 0.5)
                    fb = dataclasses.replace(fb, frames=augment_video(fb.frames[:, None], rng)[:, 0])
                loss_f, parts_f = frame_loss(frame_net, rank_rows(fb, info), device)
                opt_frame.zero_grad(set_to_none=True)
                loss_f.backward()
                opt_frame.step()
                scalars |= {"frame_loss": loss_f.item()} | parts_f
            cb = sample_clips(episodes, rng, cfg.clip_batch, cfg.clip)
            if cfg.augment:
                cb = mirror_clips(cb, rng.random(cfg.clip_batch) < 0.5)
                cb = dataclasses.replace(cb, clips=augment_video(cb.clips, rng))
            loss_c, parts_c = clip_loss(clip_net, rank_rows(cb, info), device, spread)
            opt_clip.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_clip.step()
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                scalars |= {"clip_loss": loss_c.item()} | parts_c
                scalars = {k: v for k, v in scalars.items() if k in LOGGED_PARTS}
                if info.distributed:  # a collective: every rank takes part
                    mean = all_reduce_mean(torch.tensor(list(scalars.values()), dtype=torch.float64), info)
                    scalars = dict(zip(scalars, mean.tolist()))
                if info.is_main:
                    log.log(done, lr=lr, **scalars)
                    bar.set_postfix({k.split("_")[0]: f"{v:.3f}" for k, v in scalars.items() if k.endswith("_loss")})
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                checkpointer.save(done, modules, optimizers, extra={"cpu_seconds": cpu_seconds()})
                if info.is_main:
                    log.save()
                    if done == cfg.steps or done % PLOT_EVERY == 0:
                        log.plot(run_dir / "losses.png", title="probe training")
        del episodes

    frame.eval()
    clip.eval()
    if cfg.clip_role == "action":
        probes = Probes(frame=frame, clip=load_probes(cfg.clip_from).clip.to(device), action=clip)
    else:
        probes = Probes(frame=frame, clip=clip)
    total_cpu = cpu_seconds()
    if not info.is_main:
        cleanup(info)
        return ProbeTrainResult(out=out_dir, run_dir=run_dir, steps=cfg.steps, accuracy=None, cpu_seconds=total_cpu)
    heldout = render_episodes(cfg.episode, HELDOUT_SEED_BASE, cfg.heldout_episodes, desc="render held-out episodes")
    accuracy = probe_accuracy(probes, heldout, device=device)
    total_cpu = cpu_seconds()
    extra = {
        "train_seeds": [TRAIN_SEED_BASE, TRAIN_SEED_BASE + cfg.train_episodes],
        "heldout_seeds": [HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + cfg.heldout_episodes],
        "steps": cfg.steps,
        "cpu_seconds": round(total_cpu, 1),
        "heldout_accuracy": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(accuracy).items()},
    }
    frame_extra = None  # the same as the clip probe's when both were trained here
    if not train_frame:
        kept = load_stage(Path(cfg.frame_from), FRAME_STAGE).extra
        frame_extra = {k: v for k, v in kept.items() if k != "bundled_from"} | {"kept_from": str(cfg.frame_from)}
        extra["frame_from"] = str(cfg.frame_from)
    if cfg.clip_from is not None:
        extra["clip_from"] = str(cfg.clip_from)
        extra["clip_role"] = cfg.clip_role
    if cfg.episode.pattern_fraction:
        extra["pattern_fraction"] = cfg.episode.pattern_fraction
    save_probes(out_dir, probes, extra=extra, frame_extra=frame_extra)
    write_json(run_dir / "probe_accuracy.json", {"accuracy": accuracy, "cpu_seconds": total_cpu, "out": str(out_dir)})
    print(f"probes saved to {out_dir}; held-out accuracy: {vars(accuracy)}; cpu {total_cpu / 60:.1f} min")
    cleanup(info)
    return ProbeTrainResult(out=out_dir, run_dir=run_dir, steps=cfg.steps, accuracy=accuracy, cpu_seconds=total_cpu)
