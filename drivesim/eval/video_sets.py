"""Sets of clips to evaluate: read from a dataset folder (manifest.jsonl, DESIGN.md §2) or a plain
folder of MP4 files, or built from arrays in memory.

Labels, boxes and actions of a *generated* set are what was requested / commanded; of a *real*
set they are the ground truth. Labels outside the probes' vocabulary (e.g. `unknown`,
`dawn_dusk`) count as not given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivesim.eval.checks import check_uint8_clip
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi")


@dataclass(frozen=True)
class EvalClip:
    """frames: (t, h, w, 3) uint8. boxes: per frame normalised (n, 4) xyxy, None for a frame
    without box labels; actions: (t, 2) [steer, accel], actions[i] led to frame i."""

    id: str
    frames: np.ndarray
    fps: float
    time_of_day: str | None = None
    crowdedness: str | None = None
    boxes: list[np.ndarray | None] | None = None
    actions: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_uint8_clip(f"clip {self.id!r} frames", self.frames)
        t = self.frames.shape[0]
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"clip {self.id!r}: fps={self.fps} must be a positive number")
        if self.time_of_day is not None and self.time_of_day not in TIME_OF_DAY:
            raise ValueError(f"clip {self.id!r}: time_of_day={self.time_of_day!r}; expected one of {list(TIME_OF_DAY)}")
        if self.crowdedness is not None and self.crowdedness not in CROWDEDNESS:
            raise ValueError(f"clip {self.id!r}: crowdedness={self.crowdedness!r}; expected one of {list(CROWDEDNESS)}")
        if self.boxes is not None and len(self.boxes) != t:
            raise ValueError(f"clip {self.id!r}: boxes has {len(self.boxes)} frames, the video has {t}")
        if self.actions is not None and (self.actions.ndim != 2 or self.actions.shape != (t, 2)):
            raise ValueError(f"clip {self.id!r}: actions must have shape ({t}, 2), got {self.actions.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class VideoSet:
    clips: tuple[EvalClip, ...]
    source: str

    def __post_init__(self) -> None:
        if len(self.clips) == 0:
            raise ValueError(f"video set {self.source!r} is empty: need at least one clip")
        ids = [c.id for c in self.clips]
        if len(set(ids)) != len(ids):
            raise ValueError(f"video set {self.source!r} has repeated clip ids")

    def by_id(self) -> dict[str, EvalClip]:
        return {c.id: c for c in self.clips}


def _known(label: str, allowed: tuple[str, ...]) -> str | None:
    return label if label in allowed else None


def _read_frames(path: Path, max_frames: int | None) -> tuple[np.ndarray, float]:
    from drivesim.data.video import VideoReader

    frames = []
    with VideoReader(path) as reader:
        fps = reader.info.fps
        for frame in reader.frames():
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    return np.stack(frames), fps  # (t, h, w, c)


def _load_dataset(root: Path, max_clips: int | None, max_frames: int | None) -> list[EvalClip]:
    from drivesim.data.dataset import open_dataset

    ds = open_dataset(root)
    clips = []
    for record in ds.clips[:max_clips]:
        frames, _ = _read_frames(ds.video_path(record), max_frames)
        t = frames.shape[0]
        ann = ds.load_annotations(record)
        boxes = actions = None
        if ann is not None and ann.boxes is not None:
            boxes = [ann.boxes.frame(i).xyxy if ann.boxes.labelled[i] else None for i in range(t)]
        if ann is not None and ann.actions is not None:
            actions = ann.actions[:t].astype(np.float32)
        clips.append(
            EvalClip(
                id=record.id,
                frames=frames,
                fps=record.fps,
                time_of_day=_known(record.time_of_day, TIME_OF_DAY),
                crowdedness=_known(record.crowdedness, CROWDEDNESS),
                boxes=boxes,
                actions=actions,
            )
        )
    return clips


def load_video_set(folder: str | Path, max_clips: int | None = None, max_frames: int | None = None) -> VideoSet:
    """Read a dataset folder (with manifest.jsonl) or every video file directly in `folder`."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist")
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"max_clips={max_clips} must be >= 1 or None")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames={max_frames} must be >= 1 or None")
    if (root / "manifest.jsonl").is_file():
        clips = _load_dataset(root, max_clips, max_frames)
    else:
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)[:max_clips]
        clips = []
        for p in paths:
            frames, fps = _read_frames(p, max_frames)
            clips.append(EvalClip(id=p.stem, frames=frames, fps=fps))
    if not clips:
        raise ValueError(
            f"no videos found in {root}: expected a dataset folder with manifest.jsonl or video files "
            f"with suffix {list(VIDEO_SUFFIXES)}"
        )
    return VideoSet(clips=tuple(clips), source=str(root))
