"""Training windows: T frames at a frame stride from the clips of a dataset folder.

The index is built lazily from the manifest's `num_frames` (no video is opened up
front). A clip whose video is missing, unreadable or shorter than the manifest says,
or whose annotation file is invalid, is skipped: a warning, a count in `report()`,
and the window is replaced by one from the next good clip (the sample's `fallbacks`
says how many clips were passed over, so DataLoader workers' skips reach the caller).
"""

from __future__ import annotations

import operator
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange

from drivesim.data.annotations import ClipAnnotations, interval_actions
from drivesim.data.dataset import DatasetFolder, open_dataset
from drivesim.data.labels import SPLITS, crowdedness_index, time_of_day_index
from drivesim.data.manifest import ClipRecord
from drivesim.data.video import CorruptVideoError

_ANNOTATION_CACHE = 32


class DataWarning(UserWarning):
    """A clip was skipped (missing, corrupt or too short)."""


@dataclass(frozen=True)
class WindowConfig:
    num_frames: int = 8  # T
    stride: int = 1  # frames between consecutive window frames
    height: int = 64  # model resolution
    width: int = 128
    split: str | None = "train"  # None: every split
    max_boxes: int = 16  # boxes per frame after padding/truncation (largest kept)
    window_step: int | None = None  # distance between window starts; None: the window span

    def __post_init__(self) -> None:
        for name in ("num_frames", "stride", "height", "width", "max_boxes", "window_step"):
            value = getattr(self, name)
            if name == "window_step" and value is None:
                continue
            allowed = "an int >= 1" + (" or None" if name == "window_step" else "")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"WindowConfig.{name}={value!r} is not allowed; expected {allowed}")
        if self.split is not None and (not isinstance(self.split, str) or self.split not in SPLITS):
            raise ValueError(f"WindowConfig.split={self.split!r}; expected one of {list(SPLITS)} or None")

    @property
    def span(self) -> int:
        """Frames from the first to the last frame of a window, inclusive."""
        return (self.num_frames - 1) * self.stride + 1


@dataclass
class WindowSample:
    video: torch.Tensor  # (t, c, h, w) float32 in [-1, 1]
    time_of_day: int  # index, -1 unknown
    crowdedness: int  # index, -1 unknown
    boxes: torch.Tensor  # (t, n, 4) float32 normalised xyxy, zero where padded
    box_classes: torch.Tensor  # (t, n) int64 into BOX_CLASSES, 0 where padded
    box_track_ids: torch.Tensor  # (t, n) int64, -1 where padded or unknown
    box_mask: torch.Tensor  # (t, n) bool, True for a real box
    boxes_labelled: torch.Tensor  # (t,) bool: the frame has box annotation (empty = no vehicles)
    actions: torch.Tensor  # (t, 2) float32 [steer, accel] (mean over each stride interval), zeros when absent
    ego_speed: torch.Tensor  # (t,) float32 m/s, zeros when absent
    events: torch.Tensor  # (t, 2) bool [collision, off_road], False when absent
    has_actions: bool
    has_ego: bool
    has_events: bool
    clip_id: str
    start: int  # first frame index in the clip
    fallbacks: int  # clips skipped to produce this sample


@dataclass
class WindowBatch:
    video: torch.Tensor  # (b, t, c, h, w)
    time_of_day: torch.Tensor  # (b,) int64
    crowdedness: torch.Tensor  # (b,) int64
    boxes: torch.Tensor  # (b, t, n, 4)
    box_classes: torch.Tensor  # (b, t, n)
    box_track_ids: torch.Tensor  # (b, t, n)
    box_mask: torch.Tensor  # (b, t, n)
    boxes_labelled: torch.Tensor  # (b, t)
    actions: torch.Tensor  # (b, t, 2)
    ego_speed: torch.Tensor  # (b, t)
    events: torch.Tensor  # (b, t, 2)
    has_actions: torch.Tensor  # (b,) bool
    has_ego: torch.Tensor  # (b,) bool
    has_events: torch.Tensor  # (b,) bool
    clip_ids: list[str]
    starts: torch.Tensor  # (b,) int64
    fallbacks: torch.Tensor  # (b,) int64

    def to(self, device: torch.device | str) -> WindowBatch:
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()}
        return WindowBatch(**moved)

    def __len__(self) -> int:
        return int(self.video.shape[0])


_TENSOR_FIELDS = ("video", "boxes", "box_classes", "box_track_ids", "box_mask", "boxes_labelled")
_TENSOR_FIELDS += ("actions", "ego_speed", "events")


def collate_windows(samples: list[WindowSample]) -> WindowBatch:
    """Stack samples into a batch (use as a DataLoader's collate_fn)."""
    if not samples:
        raise ValueError("collate_windows needs at least one sample")
    stacked = {name: torch.stack([getattr(s, name) for s in samples]) for name in _TENSOR_FIELDS}

    def ints(name: str) -> torch.Tensor:
        return torch.tensor([int(getattr(s, name)) for s in samples], dtype=torch.int64)

    def flags(name: str) -> torch.Tensor:
        return torch.tensor([bool(getattr(s, name)) for s in samples], dtype=torch.bool)

    return WindowBatch(
        **stacked,
        time_of_day=ints("time_of_day"),
        crowdedness=ints("crowdedness"),
        has_actions=flags("has_actions"),
        has_ego=flags("has_ego"),
        has_events=flags("has_events"),
        clip_ids=[s.clip_id for s in samples],
        starts=ints("start"),
        fallbacks=ints("fallbacks"),
    )


@dataclass
class SkipReport:
    clips_in_split: int
    usable_clips: int  # clips that contribute windows and have not failed
    missing: list[str] = field(default_factory=list)  # video file absent at index time
    too_short: list[str] = field(default_factory=list)  # fewer frames than one window
    failed: dict[str, str] = field(default_factory=dict)  # clip id -> reason (read at get-time)
    fallbacks: int = 0  # windows replaced by a window of another clip (in this process)

    @property
    def skipped(self) -> int:
        return len(self.missing) + len(self.too_short) + len(self.failed)


def _is_file(path: Path) -> bool:
    """Path.is_file, False also where the OS refuses the path (name too long, no permission)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _select_boxes(xyxy: np.ndarray, max_boxes: int) -> np.ndarray:
    """Indices of at most max_boxes boxes, the largest by area, in their original order."""
    if xyxy.shape[0] <= max_boxes:
        return np.arange(xyxy.shape[0])
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return np.sort(np.argsort(-area, kind="stable")[:max_boxes])


class WindowDataset(torch.utils.data.Dataset):
    """Windows of `config.num_frames` frames from a dataset folder, resized with INTER_AREA."""

    def __init__(self, root: str | Path, config: WindowConfig) -> None:
        self.config = config
        self.folder: DatasetFolder = open_dataset(root)
        in_split = [r for r in self.folder.clips if config.split is None or r.split == config.split]
        self._report = SkipReport(clips_in_split=len(in_split), usable_clips=0)
        step = config.window_step if config.window_step is not None else config.span
        clips: list[ClipRecord] = []
        counts: list[int] = []
        for record in in_split:
            if not _is_file(self.folder.video_path(record)):
                self._skip_warning(record, f"video file {self.folder.video_path(record)} is missing or unreachable")
                self._report.missing.append(record.id)
            elif record.num_frames < config.span:
                self._report.too_short.append(record.id)
            else:
                clips.append(record)
                counts.append((record.num_frames - config.span) // step + 1)
        self._clips = clips
        self._step = step
        self._first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # first window per clip
        self._bad: set[int] = set()
        self._annotations: OrderedDict[int, ClipAnnotations | None] = OrderedDict()
        self._report.usable_clips = len(clips)
        if not clips:
            raise ValueError(
                f"no windows of {config.num_frames} frames at stride {config.stride} in {self.folder.root} "
                f"(split={config.split!r}: {len(in_split)} clips, {len(self._report.missing)} missing, "
                f"{len(self._report.too_short)} shorter than {config.span} frames)"
            )

    def __len__(self) -> int:
        return int(self._first[-1])

    def report(self) -> SkipReport:
        """Skips seen by this process (DataLoader workers count their own; see `fallbacks`)."""
        return self._report

    def _skip_warning(self, record: ClipRecord, reason: str) -> None:
        warnings.warn(f"skipping clip {record.id!r}: {reason}", DataWarning, stacklevel=3)

    def _clip_annotations(self, c: int) -> ClipAnnotations | None:
        if c not in self._annotations:
            self._annotations[c] = self.folder.load_annotations(self._clips[c])
            if len(self._annotations) > _ANNOTATION_CACHE:
                self._annotations.popitem(last=False)
        return self._annotations[c]

    def __getitem__(self, index: int) -> WindowSample:
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"window index must be an int, got {type(index).__name__} {index!r}") from None
        if not 0 <= index < len(self):
            raise IndexError(f"window index {index} out of range [0, {len(self)})")
        c = int(np.searchsorted(self._first, index, side="right") - 1)
        offset = index - int(self._first[c])
        fallbacks = 0
        for _ in range(len(self._clips)):
            if c not in self._bad:
                try:
                    return self._load(c, offset * self._step, fallbacks)
                except (CorruptVideoError, ValueError, OSError) as exc:
                    self._bad.add(c)
                    self._report.failed[self._clips[c].id] = str(exc)
                    self._report.usable_clips -= 1
                    self._skip_warning(self._clips[c], str(exc))
            fallbacks += 1
            self._report.fallbacks += 1
            c = (c + 1) % len(self._clips)
            offset = index % int(self._first[c + 1] - self._first[c])
        raise RuntimeError(
            f"every clip of {self.folder.root} (split={self.config.split!r}) failed to load: {self._report.failed}"
        )

    def _load(self, c: int, start: int, fallbacks: int) -> WindowSample:
        cfg = self.config
        record = self._clips[c]
        ann = self._clip_annotations(c)
        with self.folder.open_video(record) as reader:
            frames = reader.read_window(start, cfg.num_frames, cfg.stride)  # (t, h, w, c) uint8
        if frames.shape[1:3] != (cfg.height, cfg.width):
            frames = np.stack([cv2.resize(f, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA) for f in frames])
        indices = np.arange(start, start + cfg.num_frames * cfg.stride, cfg.stride)
        sample = window_sample(record, ann, frames, indices, cfg)
        sample.fallbacks = fallbacks
        return sample


def window_sample(
    record: ClipRecord, ann: ClipAnnotations | None, frames: np.ndarray, indices: np.ndarray, cfg: WindowConfig
) -> WindowSample:
    """A window's sample from its (resized) `t h w c` uint8 frames at source frame `indices`;
    boxes, actions, ego speed and events come from `ann` at the same frames. Used by
    WindowDataset and the shard reader, so both give identical samples."""
    video = rearrange(torch.from_numpy(frames), "t h w c -> t c h w").float() / 127.5 - 1.0
    t, n = cfg.num_frames, cfg.max_boxes
    boxes = torch.zeros(t, n, 4)
    classes = torch.zeros(t, n, dtype=torch.int64)
    track_ids = torch.full((t, n), -1, dtype=torch.int64)
    mask = torch.zeros(t, n, dtype=torch.bool)
    labelled = torch.zeros(t, dtype=torch.bool)
    if ann is not None and ann.boxes is not None:
        for k, i in enumerate(indices):
            labelled[k] = bool(ann.boxes.labelled[i])
            fb = ann.boxes.frame(int(i))
            keep = _select_boxes(fb.xyxy, n)
            m = keep.shape[0]
            boxes[k, :m] = torch.from_numpy(fb.xyxy[keep])
            classes[k, :m] = torch.from_numpy(fb.classes[keep])
            track_ids[k, :m] = torch.from_numpy(fb.track_ids[keep])
            mask[k, :m] = True
    has_actions = ann is not None and ann.actions is not None
    has_ego = ann is not None and ann.ego is not None
    has_events = ann is not None and ann.events is not None
    return WindowSample(
        video=video,
        time_of_day=time_of_day_index(record.time_of_day),
        crowdedness=crowdedness_index(record.crowdedness),
        boxes=boxes,
        box_classes=classes,
        box_track_ids=track_ids,
        box_mask=mask,
        boxes_labelled=labelled,
        actions=(
            torch.from_numpy(interval_actions(ann.actions, indices, cfg.stride)) if has_actions else torch.zeros(t, 2)
        ),
        ego_speed=torch.from_numpy(ann.ego[indices, 0]) if has_ego else torch.zeros(t),
        events=torch.from_numpy(ann.events[indices]) if has_events else torch.zeros(t, 2, dtype=torch.bool),
        has_actions=has_actions,
        has_ego=has_ego,
        has_events=has_events,
        clip_id=record.id,
        start=int(indices[0]),
        fallbacks=0,
    )
