"""Training windows streamed from tar shards (`drivesim data shards`): `ShardWindowDataset`.

The streaming twin of `WindowDataset`: the same `WindowSample`s, pixel for pixel, in the
same order when not shuffled. Shards are split by node (rank, world size) and then by
DataLoader worker; with `shuffle` the shard order changes every epoch (the same permutation
on every rank) and clips and windows pass through shuffle buffers; with `resampled` every
(rank, worker) draws shards with replacement, forever (for multi-node training with a fixed
number of steps). A corrupt shard raises `CorruptShardError` naming it, or with
`on_corrupt_shard="skip"` is skipped with a `DataWarning` and listed in `report()`; a clip
that fails to decode is skipped like `WindowDataset` skips it (`fallbacks` counts it).
"""

from __future__ import annotations

import os
import random
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from drivesim.data.annotations import load_annotations
from drivesim.data.shards import (
    CorruptShardError,
    ShardClip,
    ShardClipEntry,
    ShardEntry,
    iter_shard_clips,
    read_shard_manifest,
    require_webdataset,
)
from drivesim.data.video import CorruptVideoError, VideoReader
from drivesim.data.windows import DataWarning, WindowConfig, WindowSample, window_sample


class NodeInfo(Protocol):
    """Rank and world size, e.g. `drivesim.training.distributed.DistInfo`."""

    rank: int
    world_size: int


@dataclass(frozen=True)
class ShardReadConfig:
    shuffle: bool = False  # shard order per epoch (same on every rank) + clip and window shuffle buffers
    clip_buffer: int = 32  # clips (compressed bytes) held by the clip shuffle
    window_buffer: int = 32  # windows (float tensors) held by the window shuffle; 1 = none
    resampled: bool = False  # infinite: each (rank, worker) draws shards with replacement
    seed: int = 0
    on_corrupt_shard: str = "raise"  # "raise" | "skip" (DataWarning, listed in report(), next shard)

    def __post_init__(self) -> None:
        for name in ("clip_buffer", "window_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"ShardReadConfig.{name}={getattr(self, name)} must be >= 1")
        if self.on_corrupt_shard not in ("raise", "skip"):
            raise ValueError(f"ShardReadConfig.on_corrupt_shard={self.on_corrupt_shard!r}; allowed: 'raise', 'skip'")


@dataclass
class ShardReport:
    """Skips seen by this process (each DataLoader worker has its own; see `fallbacks`)."""

    failed_shards: dict[str, str] = field(default_factory=dict)  # shard name -> reason
    failed: dict[str, str] = field(default_factory=dict)  # clip id -> reason
    fallbacks: int = 0  # clips passed over


class ShardWindowDataset(torch.utils.data.IterableDataset):
    """Windows of `config.num_frames` frames streamed from tar shards (see the module doc).

    node: rank and world size (a `DistInfo`); None reads RANK / WORLD_SIZE like torchrun sets.
    Without `resampled`, ranks may get different numbers of windows: for DDP prefer
    `resampled=True` with a fixed number of steps. `set_epoch` reaches DataLoader workers
    started after it (persistent_workers=False).
    """

    def __init__(
        self, root: str | Path, config: WindowConfig, read: ShardReadConfig | None = None, node: NodeInfo | None = None
    ) -> None:
        require_webdataset()
        self.config, self.read = config, read or ShardReadConfig()
        self.manifest = read_shard_manifest(root)
        self.rank = int(os.environ.get("RANK", "0")) if node is None else node.rank
        self.world_size = int(os.environ.get("WORLD_SIZE", "1")) if node is None else node.world_size
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank={self.rank} and world_size={self.world_size}: need 0 <= rank < world_size")
        self._step = config.window_step if config.window_step is not None else config.span
        counts = [sum(self._windows_of(c) for c in s.clips) for s in self.manifest.shards]
        self._shards = [s for s, n in zip(self.manifest.shards, counts) if n > 0]
        self._weights = [n for n in counts if n > 0]
        self.num_windows = sum(counts)  # over every shard and rank
        if not self._shards:
            raise ValueError(
                f"no windows of {config.num_frames} frames at stride {config.stride} in {self.manifest.root} "
                f"(split={config.split!r})"
            )
        if not self.read.resampled and len(self._shards) < self.world_size:
            raise ValueError(
                f"{len(self._shards)} shards hold split={config.split!r} but world_size={self.world_size}: every rank "
                "needs a shard; write smaller shards (shard_max_clips) or use resampled=True"
            )
        self.epoch = 0
        self._report = ShardReport()

    def _windows_of(self, clip: ShardClipEntry) -> int:
        if self.config.split is not None and clip.split != self.config.split:
            return 0
        return max(0, (clip.num_frames - self.config.span) // self._step + 1)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle: the shard order and shuffle buffers depend on (seed, epoch)."""
        self.epoch = epoch

    def report(self) -> ShardReport:
        return self._report

    def _worker(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def shards_for(self, worker: int, num_workers: int) -> list[ShardEntry]:
        """This rank's and worker's shards for the current epoch (not resampled)."""
        shards = list(self._shards)
        if self.read.shuffle:
            random.Random(f"{self.read.seed}:{self.epoch}").shuffle(shards)  # the same on every rank
        return shards[self.rank :: self.world_size][worker::num_workers]

    def _shard_stream(self, worker: int, num_workers: int) -> Iterator[ShardEntry]:
        if not self.read.resampled:
            mine = self.shards_for(worker, num_workers)
            if not mine:
                warnings.warn(
                    f"rank {self.rank} worker {worker} got no shard ({len(self._shards)} shards, "
                    f"world_size={self.world_size}, {num_workers} workers)",
                    DataWarning,
                    stacklevel=3,
                )
            yield from mine
            return
        rng = random.Random(f"{self.read.seed}:{self.epoch}:{self.rank}:{worker}")
        while len(self._report.failed_shards) < len(self._shards):
            yield rng.choices(self._shards, weights=self._weights)[0]
        raise RuntimeError(f"every shard of {self.manifest.root} failed: {self._report.failed_shards}")

    def _clips(self, worker: int, num_workers: int) -> Iterator[ShardClip]:
        for entry in self._shard_stream(worker, num_workers):
            if entry.name in self._report.failed_shards:
                continue
            try:
                for clip in iter_shard_clips(self.manifest.root, entry):
                    if self._windows_of(ShardClipEntry(clip.record.id, clip.record.split, clip.record.num_frames)):
                        yield clip
            except CorruptShardError as exc:
                if self.read.on_corrupt_shard == "raise":
                    raise
                self._report.failed_shards[entry.name] = str(exc)
                warnings.warn(f"skipping shard {entry.name}: {exc}", DataWarning, stacklevel=2)

    def __iter__(self) -> Iterator[WindowSample]:
        wds = require_webdataset()
        worker, num_workers = self._worker()
        rng = random.Random(f"{self.read.seed}:{self.epoch}:{self.rank}:{worker}:buffers")
        clips: Iterator[ShardClip] = self._clips(worker, num_workers)
        if self.read.shuffle and self.read.clip_buffer > 1:
            clips = wds.shuffle(self.read.clip_buffer, rng=rng)(clips)
        windows = self._windows(clips)
        if self.read.shuffle and self.read.window_buffer > 1:
            windows = wds.shuffle(self.read.window_buffer, rng=rng)(windows)
        yield from windows

    def _windows(self, clips: Iterator[ShardClip]) -> Iterator[WindowSample]:
        pending = 0  # clips skipped since the last sample
        with tempfile.TemporaryDirectory(prefix="drivesim-shard-") as tmp:
            for clip in clips:
                try:
                    for sample in self._clip_windows(clip, Path(tmp)):
                        sample.fallbacks, pending = pending, 0
                        yield sample
                except (CorruptVideoError, ValueError, OSError) as exc:
                    pending += 1
                    self._report.fallbacks += 1
                    self._report.failed[clip.record.id] = f"{clip.shard}: {exc}"
                    warnings.warn(f"skipping clip {clip.record.id!r} of {clip.shard}: {exc}", DataWarning, stacklevel=2)

    def _clip_windows(self, clip: ShardClip, tmp: Path) -> Iterator[WindowSample]:
        """Decode the clip once, front to back, and emit each window as soon as its last frame is in
        (frames of the same windows `WindowDataset` reads with seeks; a clip that fails mid-way
        keeps the windows already emitted)."""
        cfg, record = self.config, clip.record
        ann = None
        if clip.annotations is not None:
            (tmp / "clip.npz").write_bytes(clip.annotations)
            ann = load_annotations(tmp / "clip.npz", expected_num_frames=record.num_frames)
        (tmp / "clip.mp4").write_bytes(clip.video)
        starts = range(0, record.num_frames - cfg.span + 1, self._step)
        needed = {i for s in starts for i in range(s, s + cfg.span, cfg.stride)}
        kept: dict[int, np.ndarray] = {}
        w, i = 0, -1
        with VideoReader(tmp / "clip.mp4") as reader:
            for i, frame in enumerate(reader.frames()):
                if i in needed:
                    if frame.shape[:2] != (cfg.height, cfg.width):
                        frame = cv2.resize(frame, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA)
                    kept[i] = frame
                while w < len(starts) and starts[w] + cfg.span - 1 <= i:
                    indices = np.arange(starts[w], starts[w] + cfg.span, cfg.stride)
                    yield window_sample(record, ann, np.stack([kept[int(j)] for j in indices]), indices, cfg)
                    w += 1
                    for j in [j for j in kept if w == len(starts) or j < starts[w]]:
                        del kept[j]
                if w == len(starts):
                    return
        raise CorruptVideoError(f"{clip.shard}:{record.id}: the video ended after frame {i} of {record.num_frames}")
