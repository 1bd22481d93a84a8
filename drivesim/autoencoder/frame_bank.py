"""All frames of some clips of a dataset folder in memory, for autoencoder training.

Frames are kept as uint8 `n h w c` (64x128 RGB is 24 KiB a frame, so thousands fit
easily); clips are contiguous ranges, so windows of consecutive frames can be drawn
without touching the video files again. Unreadable clips are skipped with a warning.
With `box_masks=True` each frame's annotated boxes come along as a bool mask (`box_masks.py`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from drivesim.autoencoder.box_masks import clip_box_masks
from drivesim.data.dataset import open_dataset
from drivesim.data.video import CorruptVideoError


@dataclass(frozen=True)
class ClipFrames:
    frames: torch.Tensor  # (n, h, w, c) uint8
    offsets: torch.Tensor  # (num_clips + 1,) int64; clip i owns frames offsets[i]:offsets[i+1]
    clip_ids: tuple[str, ...]
    skipped: tuple[str, ...]
    masks: torch.Tensor | None = None  # (n, h, w) bool: inside an annotated box (load_clip_frames(box_masks=True))

    @property
    def num_clips(self) -> int:
        return len(self.clip_ids)

    def clip(self, index: int) -> torch.Tensor:
        """Frames of clip `index`, (t, h, w, c) uint8."""
        return self.frames[int(self.offsets[index]) : int(self.offsets[index + 1])]

    def clip_masks(self, index: int) -> torch.Tensor:
        """Box masks of clip `index`, (t, h, w) bool; an error when the bank was loaded without them."""
        if self.masks is None:
            raise ValueError("this ClipFrames has no box masks; load it with load_clip_frames(..., box_masks=True)")
        return self.masks[int(self.offsets[index]) : int(self.offsets[index + 1])]


def load_clip_frames(
    dataset: str | Path,
    splits: str | tuple[str, ...],
    height: int,
    width: int,
    max_clips: int | None = None,
    box_masks: bool = False,
) -> ClipFrames:
    """Decode the clips of `splits` (resized to height x width with INTER_AREA when needed); with
    `box_masks`, also each frame's box mask from the clip's annotations (all False without boxes)."""
    folder = open_dataset(dataset)
    wanted = (splits,) if isinstance(splits, str) else tuple(splits)
    records = [r for r in folder.clips if r.split in wanted]
    if max_clips is not None:
        records = records[:max_clips]
    if not records:
        raise ValueError(f"dataset {folder.root} has no clips in split(s) {list(wanted)}")
    chunks: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    ids: list[str] = []
    skipped: list[str] = []
    for record in tqdm(records, desc=f"reading {'+'.join(wanted)} clips", leave=False):
        try:
            with folder.open_video(record) as reader:
                frames = [
                    f
                    if f.shape[:2] == (height, width)
                    else cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                    for f in reader.frames()
                ]
        except (CorruptVideoError, OSError, ValueError) as exc:
            warnings.warn(f"skipping clip {record.id!r}: {exc}", stacklevel=2)
            skipped.append(record.id)
            continue
        if frames:
            chunks.append(np.stack(frames))
            ids.append(record.id)
            if box_masks:
                annotations = folder.load_annotations(record)
                boxes = None if annotations is None else annotations.boxes
                masks.append(clip_box_masks(boxes, len(frames), height, width))
    if not chunks:
        raise ValueError(f"no readable clips in {folder.root} split(s) {list(wanted)}; skipped {skipped}")
    counts = [c.shape[0] for c in chunks]
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.int64)
    return ClipFrames(
        frames=torch.from_numpy(np.concatenate(chunks)),
        offsets=offsets,
        clip_ids=tuple(ids),
        skipped=tuple(skipped),
        masks=torch.from_numpy(np.concatenate(masks)) if box_masks else None,
    )
