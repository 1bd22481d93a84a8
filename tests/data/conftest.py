"""Shared builders for the dataset-format tests: smooth synthetic frames and tiny datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import MANIFEST_NAME, ClipRecord, write_manifest


def smooth_frames(num_frames: int, height: int, width: int, phase: float = 0.0) -> np.ndarray:
    """`t h w c` uint8 low-frequency colour gradients that drift over time; frame k has a
    blue level of 20 + 7k (mod 200), so frames can be told apart after compression."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for k in range(num_frames):
        out[k, ..., 0] = 128 + 90 * np.sin(2 * np.pi * (x / width + k / 40 + phase))
        out[k, ..., 1] = 128 + 90 * np.cos(2 * np.pi * y / height / 2)
        out[k, ..., 2] = 20 + (7 * k) % 200
    return out


def toy_annotations(num_frames: int, seed: int = 0, max_boxes: int = 4) -> ClipAnnotations:
    """Random but valid annotations with every part present."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num_frames):
        n = int(rng.integers(0, max_boxes + 1))
        lo = rng.uniform(0, 0.5, (n, 2))
        hi = lo + rng.uniform(0.01, 0.5, (n, 2))
        xyxy = np.concatenate([lo, hi], axis=1).astype(np.float32)
        frames.append(FrameBoxes(xyxy=xyxy, classes=rng.integers(0, 2, n).astype(np.int64), track_ids=np.arange(n) * 3))
    return ClipAnnotations(
        num_frames=num_frames,
        boxes=ClipBoxes.from_frames(frames),
        actions=rng.uniform(-1, 1, (num_frames, 2)).astype(np.float32),
        ego=rng.uniform(0, 30, (num_frames, 3)).astype(np.float32),
        events=rng.random((num_frames, 2)) < 0.2,
    )


def build_dataset(
    root: Path,
    num_clips: int = 3,
    num_frames: int = 12,
    height: int = 32,
    width: int = 64,
    splits: tuple[str, ...] = ("train",),
    annotate: bool = True,
) -> list[ClipRecord]:
    """Write a small dataset folder; clip i is labelled with (day|night, low|medium|high)."""
    records = []
    for i in range(num_clips):
        labels = ClipLabels(
            id=f"clip_{i:02d}",
            fps=10.0,
            time_of_day=("day", "night", "unknown")[i % 3],
            crowdedness=("low", "medium", "high")[i % 3],
            split=splits[i % len(splits)],
            source="test",
            seed=i,
        )
        frames = smooth_frames(num_frames, height, width, phase=i / 7)
        ann = toy_annotations(num_frames, seed=i) if annotate else None
        records.append(write_clip(root, labels, iter(frames), ann))
    write_manifest(root / MANIFEST_NAME, records)
    return records


@pytest.fixture
def frames_fn():
    """The smooth_frames builder (fixtures keep the helpers importable under any import mode)."""
    return smooth_frames


@pytest.fixture
def annotations_fn():
    return toy_annotations


@pytest.fixture
def dataset_fn():
    return build_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    build_dataset(tmp_path / "ds")
    return tmp_path / "ds"
