"""The typed config of stage 1, `drivesim train stage=autoencoder` (conf/train/autoencoder.yaml).

Shared by the training loop (drivesim/training/autoencoder.py) and its shard data path
(drivesim/training/autoencoder_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig

DATA_FORMATS = ("dir", "shards")


@dataclass
class AutoencoderTrainConfig:
    dataset: str = "data/world"  # dataset folder (manifest.jsonl)
    run_dir: str = "runs/autoencoder"  # checkpoints, losses.jsonl, losses.png
    model_dir: str = "runs/models/default"  # the final stage is written here
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    height: int = 64
    width: int = 128
    max_clips: int | None = None  # of the train split; None: all
    batch_size: int = 16
    max_steps: int = 4000
    max_minutes: float | None = None  # stop (checkpoint + export) after this much wall time
    lr: float = 3e-4
    disc_lr: float = 2e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio at max_steps
    kl_weight: float = 1e-6
    gradient_weight: float = 0.5
    disc_start: int = 3000
    disc_weight: float = 0.1
    hflip: bool = True
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    eval_every: int = 250
    log_every: int = 10
    val_frames: int = 96
    scale_frames: int = 256
    num_threads: int = 1
    seed: int = 0
    data_format: str = "dir"  # "dir": frames of `dataset` in memory; "shards": streamed from `shards`
    shards: str | None = None  # folder written by `drivesim data shards` (data_format="shards")
    shard_shuffle: bool = True  # shard order per epoch, clip and frame shuffle buffers
    shard_clip_buffer: int = 8  # clips (compressed) held by the clip shuffle
    shard_frame_buffer: int = 512  # frames held by the frame shuffle (neighbouring frames are alike)
    shard_resampled: bool = False  # draw shards with replacement, no epochs (multi-node, fixed max_steps)
    shard_workers: int = 0  # DataLoader worker processes decoding shards; 0: in the training process
    shard_on_corrupt: str = "raise"  # "raise" | "skip" (warn, list, go on with the next shard)

    def __post_init__(self) -> None:
        for name in ("height", "width", "batch_size", "max_steps", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutoencoderTrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.data_format not in DATA_FORMATS:
            raise ValueError(f"AutoencoderTrainConfig.data_format={self.data_format!r}; allowed: {list(DATA_FORMATS)}")
        if self.data_format == "shards":
            if not self.shards:
                raise ValueError(
                    f"AutoencoderTrainConfig.shards={self.shards!r}: data_format='shards' needs the folder "
                    "written by `drivesim data shards`"
                )
            if self.max_clips is not None:
                raise ValueError(
                    f"AutoencoderTrainConfig.max_clips={self.max_clips}: allowed only with data_format='dir'; "
                    "with shards use null (write fewer clips into the shards instead)"
                )
        for name, low in (("shard_clip_buffer", 1), ("shard_frame_buffer", 1), ("shard_workers", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"AutoencoderTrainConfig.{name}={getattr(self, name)} must be >= {low}")
        if self.shard_on_corrupt not in ("raise", "skip"):
            raise ValueError(f"AutoencoderTrainConfig.shard_on_corrupt={self.shard_on_corrupt!r}; allowed: raise, skip")
        for name in ("lr", "disc_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AutoencoderTrainConfig.{name}={getattr(self, name)} must be > 0")
        self.model.latent_size(self.height, self.width)
