"""Stage 1 data from WebDataset shards (`data_format="shards"` of `AutoencoderTrainConfig`).

`ShardFrameStream` streams this rank's share of every global batch of frames, each frame a
1-frame window of `ShardWindowDataset`; `stream_start` says where a (re)started run's stream
begins; `shard_frames` picks held-out / latent-scale frames spread over the shards' clips.
Resume semantics are in `drivesim.training.autoencoder`'s module doc.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from tqdm import tqdm

from drivesim.data.shard_windows import NodeInfo, ShardReadConfig, ShardWindowDataset
from drivesim.data.shards import read_shard_manifest
from drivesim.data.windows import WindowConfig, WindowSample
from drivesim.training.autoencoder_config import AutoencoderTrainConfig
from drivesim.training.distributed import SINGLE, check_batch


@dataclass(frozen=True)
class StreamPosition:
    epoch: int  # pass over the shards; with shard_resampled the step the stream was seeded at
    batch: int  # batches taken in that pass


def check_shards(cfg: AutoencoderTrainConfig) -> Path:
    """The shard folder of `cfg` (data_format="shards"), or a ValueError naming the field."""
    folder = Path(str(cfg.shards))
    if not folder.is_dir():
        raise ValueError(
            f"AutoencoderTrainConfig.shards={cfg.shards!r} is not a folder; expected one written by "
            "`drivesim data shards dataset=... out=...`"
        )
    return folder


def _frame_windows(cfg: AutoencoderTrainConfig, split: str, every: int = 1) -> WindowConfig:
    """Every `every`-th frame of each clip of `split` as a 1-frame window."""
    return WindowConfig(num_frames=1, height=cfg.height, width=cfg.width, split=split, max_boxes=1, window_step=every)


def collate_frames(samples: list[WindowSample]) -> torch.Tensor:
    """1-frame windows -> (b, 3, H, W) float in [-1, 1] (a DataLoader collate_fn)."""
    return rearrange(torch.stack([s.video for s in samples]), "b 1 c h w -> b c h w")  # (b, c, h, w)


class ShardFrameStream:
    """This rank's `batch_size // world_size` frames of every global batch, streamed from shards.

    Without `shard_resampled`, passes over this rank's shards are epochs: each starts with
    `set_epoch`, and `start` (epoch, batches taken) is reached by skipping batches. With it,
    `start.epoch` seeds the endless stream. A DataLoader worker's last partial batch is dropped.
    """

    def __init__(self, cfg: AutoencoderTrainConfig, node: NodeInfo, start: StreamPosition) -> None:
        check_batch("AutoencoderTrainConfig", cfg.batch_size, node)
        self.cfg, self.per_rank = cfg, cfg.batch_size // node.world_size
        read = ShardReadConfig(
            shuffle=cfg.shard_shuffle,
            clip_buffer=cfg.shard_clip_buffer,
            window_buffer=cfg.shard_frame_buffer,
            resampled=cfg.shard_resampled,
            seed=cfg.seed,
            on_corrupt_shard=cfg.shard_on_corrupt,
        )
        self.dataset = ShardWindowDataset(check_shards(cfg), _frame_windows(cfg, "train"), read, node)
        self.epoch, self.batch = start.epoch, 0
        self._batches = self._open_pass()
        for _ in tqdm(range(start.batch), desc="skipping to the resumed batch", leave=False, disable=not start.batch):
            self.next()

    def _open_pass(self) -> Iterator[torch.Tensor]:
        self.dataset.set_epoch(self.epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.per_rank,
            num_workers=self.cfg.shard_workers,
            collate_fn=collate_frames,
            drop_last=True,
            # workers from a clean server process: a fork of a process with other threads (a test runner's I/O,
            # tqdm's monitor) can inherit a held lock and hang
            multiprocessing_context="forkserver" if self.cfg.shard_workers > 0 else None,
        )
        return iter(loader)

    def position(self) -> StreamPosition:
        return StreamPosition(self.epoch, self.batch)

    def next(self) -> torch.Tensor:
        """The next batch, (per_rank, 3, H, W) float in [-1, 1]; a finished pass opens the next epoch."""
        while True:
            try:
                x = next(self._batches)
            except StopIteration:
                if self.batch == 0:
                    raise ValueError(
                        f"a pass over {self.cfg.shards} gave no batch of {self.per_rank} train frames: lower "
                        "batch_size or shard_workers, or write more clips"
                    ) from None
                self.epoch, self.batch = self.epoch + 1, 0
                self._batches = self._open_pass()
                continue
            self.batch += 1
            return x

    def close(self) -> None:
        self._batches = iter(())  # lets DataLoader workers shut down


def stream_start(
    cfg: AutoencoderTrainConfig, step: int, extra: dict[str, Any], node: NodeInfo = SINGLE
) -> StreamPosition:
    """Where this rank's shard stream of a run (re)starting at `step` begins (see the module doc).

    A checkpoint holds every rank's position (`shard_positions`, in rank order; older ones a single
    `shard_position`). Saved by another number of ranks, whose shards were split differently, the
    positions do not apply: every rank starts the earliest saved epoch from its beginning.
    """
    if cfg.shard_resampled:
        return StreamPosition(epoch=step, batch=0)
    saved = extra.get("shard_positions")
    if saved is None and "shard_position" in extra:
        saved = [extra["shard_position"]]
    if saved is None:
        if step and node.rank == 0:
            print(f"autoencoder: the checkpoint at step {step} has no shard position; starting at epoch 0")
        return StreamPosition(0, 0)
    if len(saved) != node.world_size:
        epoch = min(int(p["epoch"]) for p in saved)
        if node.rank == 0:
            print(
                f"autoencoder: the checkpoint at step {step} holds the shard positions of {len(saved)} rank(s), "
                f"this run has world_size={node.world_size}: every rank starts epoch {epoch} from its beginning"
            )
        return StreamPosition(epoch, 0)
    mine = saved[node.rank]
    return StreamPosition(int(mine["epoch"]), int(mine["batch"]))


def shard_frames(cfg: AutoencoderTrainConfig, splits: tuple[str, ...], count: int) -> torch.Tensor:
    """About `count` frames spread over the clips of `splits` in the shards, (n, 3, H, W) in [-1, 1]:
    every (frames // count)-th frame of each clip, shards in a seeded order, the first `count` kept."""
    manifest = read_shard_manifest(check_shards(cfg))
    sizes = {s: sum(c.num_frames for e in manifest.shards for c in e.clips if c.split == s) for s in splits}
    if not any(sizes.values()):
        raise ValueError(f"shards {cfg.shards} hold no clips in split(s) {list(splits)}")
    every = max(1, sum(sizes.values()) // count)
    read = ShardReadConfig(  # shuffles the shard order only (buffers of 1)
        shuffle=True, clip_buffer=1, window_buffer=1, seed=cfg.seed, on_corrupt_shard=cfg.shard_on_corrupt
    )
    frames: list[torch.Tensor] = []
    for split in (s for s in splits if sizes[s]):
        samples = iter(ShardWindowDataset(cfg.shards, _frame_windows(cfg, split, every), read, SINGLE))
        for sample in samples:
            frames.append(sample.video)
            if len(frames) == count:
                break
        samples.close()
        if len(frames) == count:
            break
    return rearrange(torch.stack(frames), "n 1 c h w -> n c h w")  # (n, c, h, w)
