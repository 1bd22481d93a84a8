"""Per-clip annotations: boxes with class and track id, actions, ego state, events.

Every part is optional. In memory a clip's boxes are ragged arrays (all boxes of all
frames concatenated, with per-frame offsets); on disk one compressed `.npz` per clip
(no pickles) whose keys are listed in docs/dataset_format.md. Validation happens in
`__post_init__`, so a bad annotation is refused both when written and when loaded;
`load_annotations` adds the file name to the message.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivesim.data.atomic import atomic_path
from drivesim.data.labels import ACTION_FIELDS, BOX_CLASSES, EGO_FIELDS, EVENT_FIELDS

FORMAT_NAME = "drivesim.annotations"
FORMAT_VERSION = 1
_BOX_KEYS = (
    "boxes_offsets",
    "boxes_xyxy",
    "boxes_class",
    "boxes_class_names",
    "boxes_track_id",
    "boxes_labelled",
)
_KNOWN_KEYS = ("format", "version", "num_frames", *_BOX_KEYS, "actions", "ego", "events")
_BOX_TOLERANCE = 1e-4


def _check_array(field: str, value: np.ndarray, shape: tuple[int | None, ...], kind: str) -> None:
    """kind: 'f' float, 'i' integer, 'b' bool. None in `shape` matches any length."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"field {field!r} must be a numpy array, got {type(value).__name__}")
    kinds = {"f": ("f", "float"), "i": ("iu", "int"), "b": ("b", "bool")}
    allowed, name = kinds[kind]
    if value.dtype.kind not in allowed:
        raise ValueError(f"field {field!r} has dtype {value.dtype}; expected {name}")
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = tuple("n" if s is None else s for s in shape)
        raise ValueError(f"field {field!r} has shape {value.shape}; expected {want}")
    if kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"field {field!r} contains NaN or inf")


@dataclass(frozen=True)
class FrameBoxes:
    """Boxes of one frame. xyxy: (n, 4) float32 normalised to [0, 1] (x / width, y / height);
    classes: (n,) int64 indices into BOX_CLASSES; track_ids: (n,) int64, -1 = unknown."""

    xyxy: np.ndarray
    classes: np.ndarray
    track_ids: np.ndarray

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(BOX_CLASSES[int(c)] for c in self.classes)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @staticmethod
    def empty() -> FrameBoxes:
        return FrameBoxes(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), np.zeros((0,), np.int64))


@dataclass(frozen=True)
class ClipBoxes:
    """Boxes of every frame of a clip, ragged: frame i owns rows offsets[i]:offsets[i+1].

    labelled: (num_frames,) bool; False marks a frame without box annotation (so its
    empty box list does not mean "no vehicles"), e.g. outside a real dataset's labels.
    """

    offsets: np.ndarray  # (num_frames + 1,) int64, offsets[0] == 0, non-decreasing
    xyxy: np.ndarray  # (n, 4) float32 normalised x1, y1, x2, y2
    classes: np.ndarray  # (n,) int64 into BOX_CLASSES
    track_ids: np.ndarray  # (n,) int64, -1 = unknown
    labelled: np.ndarray  # (num_frames,) bool

    def __post_init__(self) -> None:
        _check_array("boxes_offsets", self.offsets, (None,), "i")
        num_frames = self.offsets.shape[0] - 1
        # compare neighbours rather than np.diff: a diff of unsigned offsets wraps instead of going negative
        if num_frames < 1 or self.offsets[0] != 0 or np.any(self.offsets[1:] < self.offsets[:-1]):
            raise ValueError("field 'boxes_offsets' must start at 0, be non-decreasing and have num_frames + 1 entries")
        n = int(self.offsets[-1])
        _check_array("boxes_xyxy", self.xyxy, (n, 4), "f")
        _check_array("boxes_class", self.classes, (n,), "i")
        _check_array("boxes_track_id", self.track_ids, (n,), "i")
        _check_array("boxes_labelled", self.labelled, (num_frames,), "b")
        if n and (self.xyxy.min() < -_BOX_TOLERANCE or self.xyxy.max() > 1 + _BOX_TOLERANCE):
            raise ValueError(
                f"field 'boxes_xyxy' must be normalised to [0, 1], got values in "
                f"[{self.xyxy.min():.4f}, {self.xyxy.max():.4f}]"
            )
        bad = np.flatnonzero((self.xyxy[:, 2] < self.xyxy[:, 0]) | (self.xyxy[:, 3] < self.xyxy[:, 1]))
        if bad.size:
            raise ValueError(f"field 'boxes_xyxy' row {int(bad[0])} has x2 < x1 or y2 < y1: {self.xyxy[bad[0]]}")
        if n and (self.classes.min() < 0 or self.classes.max() >= len(BOX_CLASSES)):
            raise ValueError(f"field 'boxes_class' must index BOX_CLASSES {list(BOX_CLASSES)}")
        if n and self.track_ids.min() < -1:
            raise ValueError("field 'boxes_track_id' must be >= 0, or -1 for unknown")

    @property
    def num_frames(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def frame(self, index: int) -> FrameBoxes:
        a, b = int(self.offsets[index]), int(self.offsets[index + 1])
        return FrameBoxes(self.xyxy[a:b], self.classes[a:b], self.track_ids[a:b])

    @staticmethod
    def from_frames(frames: Sequence[FrameBoxes], labelled: np.ndarray | None = None) -> ClipBoxes:
        counts = np.array([len(f) for f in frames], np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nonempty = [f for f in frames if len(f)] or [FrameBoxes.empty()]
        return ClipBoxes(
            offsets=offsets,
            xyxy=np.concatenate([f.xyxy for f in nonempty]).astype(np.float32),
            classes=np.concatenate([f.classes for f in nonempty]).astype(np.int64),
            track_ids=np.concatenate([f.track_ids for f in nonempty]).astype(np.int64),
            labelled=np.ones(len(frames), bool) if labelled is None else np.asarray(labelled, bool),
        )


@dataclass(frozen=True)
class ClipAnnotations:
    """Ground truth of one clip; every part may be None.

    actions: (num_frames, 2) float32 [steer, accel] in [-1, 1]; actions[i] is the action
        that led from frame i-1 to frame i (zeros for a clip's first frame after a reset).
    ego: (num_frames, 3) float32 [speed m/s, lateral_offset lane widths, heading rad].
    events: (num_frames, 2) bool [collision, off_road].
    """

    num_frames: int
    boxes: ClipBoxes | None = None
    actions: np.ndarray | None = None
    ego: np.ndarray | None = None
    events: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int | np.integer):
            raise ValueError(f"field 'num_frames'={self.num_frames!r} must be an int")
        if self.num_frames < 1:
            raise ValueError(f"field 'num_frames'={self.num_frames} must be >= 1")
        t = int(self.num_frames)
        if self.boxes is not None and self.boxes.num_frames != t:
            raise ValueError(f"field 'boxes_offsets' covers {self.boxes.num_frames} frames; expected num_frames={t}")
        if self.actions is not None:
            _check_array("actions", self.actions, (t, len(ACTION_FIELDS)), "f")
        if self.ego is not None:
            _check_array("ego", self.ego, (t, len(EGO_FIELDS)), "f")
        if self.events is not None:
            _check_array("events", self.events, (t, len(EVENT_FIELDS)), "b")


def save_annotations(path: str | Path, ann: ClipAnnotations) -> None:
    """Write `ann` as a compressed npz, atomically."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION, np.int64),
        "num_frames": np.array(ann.num_frames, np.int64),
    }
    if ann.boxes is not None:
        b = ann.boxes
        used = np.unique(b.classes)
        arrays |= {
            "boxes_offsets": b.offsets.astype(np.int64),
            "boxes_xyxy": b.xyxy.astype(np.float32),
            "boxes_class": np.searchsorted(used, b.classes).astype(np.int64),
            "boxes_class_names": np.array([BOX_CLASSES[int(c)] for c in used], dtype="<U32"),
            "boxes_track_id": b.track_ids.astype(np.int64),
            "boxes_labelled": b.labelled.astype(bool),
        }
    if ann.actions is not None:
        arrays["actions"] = ann.actions.astype(np.float32)
    if ann.ego is not None:
        arrays["ego"] = ann.ego.astype(np.float32)
    if ann.events is not None:
        arrays["events"] = ann.events.astype(bool)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _scalar(field: str, data: dict[str, np.ndarray], kind: str) -> object:
    value = data[field]
    if value.shape != () or value.dtype.kind not in kind:
        raise ValueError(f"field {field!r} must be a scalar of kind {kind!r}, got {value.dtype} {value.shape}")
    return value.item()


def _parse(data: dict[str, np.ndarray]) -> ClipAnnotations:
    missing = [k for k in ("format", "version", "num_frames") if k not in data]
    if missing:
        raise ValueError(f"field {missing[0]!r} is missing")
    unknown = sorted(set(data) - set(_KNOWN_KEYS))
    if unknown:
        raise ValueError(f"field {unknown[0]!r} is not part of the format; known fields {list(_KNOWN_KEYS)}")
    if _scalar("format", data, "U") != FORMAT_NAME:
        raise ValueError(f"field 'format'={data['format'].item()!r}; expected {FORMAT_NAME!r}")
    version = _scalar("version", data, "iu")
    if version != FORMAT_VERSION:
        raise ValueError(f"field 'version'={version}; this reader understands version {FORMAT_VERSION}")
    num_frames = int(_scalar("num_frames", data, "iu"))
    boxes = None
    present = [k for k in _BOX_KEYS if k in data]
    if present:
        if len(present) != len(_BOX_KEYS):
            absent = [k for k in _BOX_KEYS if k not in data]
            raise ValueError(f"field {absent[0]!r} is missing (box fields come together: {list(_BOX_KEYS)})")
        names = data["boxes_class_names"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise ValueError(f"field 'boxes_class_names' must be a 1-D string array, got {names.dtype} {names.shape}")
        for name in names:
            if str(name) not in BOX_CLASSES:
                raise ValueError(f"field 'boxes_class_names' has {str(name)!r}; allowed {list(BOX_CLASSES)}")
        local = data["boxes_class"]
        _check_array("boxes_class", local, (None,), "i")
        if local.size and (local.min() < 0 or local.max() >= len(names)):
            raise ValueError(f"field 'boxes_class' must index 'boxes_class_names' (0..{len(names) - 1})")
        table = np.array([BOX_CLASSES.index(str(n)) for n in names], np.int64)
        boxes = ClipBoxes(
            offsets=data["boxes_offsets"],
            xyxy=data["boxes_xyxy"],
            classes=table[local] if local.size else np.zeros(0, np.int64),
            track_ids=data["boxes_track_id"],
            labelled=data["boxes_labelled"],
        )
    return ClipAnnotations(
        num_frames=num_frames,
        boxes=boxes,
        actions=data.get("actions"),
        ego=data.get("ego"),
        events=data.get("events"),
    )


def load_annotations(path: str | Path, expected_num_frames: int | None = None) -> ClipAnnotations:
    """Read and validate one annotation file; ValueError messages start with the file name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable npz annotation file: {exc}") from exc
    except MemoryError as exc:  # a corrupt .npy header declaring a huge shape
        reason = f"an array header declares an impossible size ({exc})"
        raise ValueError(f"{path}: not a readable npz annotation file: {reason}") from None
    try:
        ann = _parse(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if expected_num_frames is not None and ann.num_frames != expected_num_frames:
        raise ValueError(
            f"{path}: field 'num_frames'={ann.num_frames} does not match the manifest's {expected_num_frames}"
        )
    return ann


def interval_actions(actions: np.ndarray, indices: np.ndarray, stride: int) -> np.ndarray:
    """Actions of frames sampled `stride` apart: (num_frames, 2), (t,) -> (t, 2) float32.

    Row k is the mean of the `stride` per-frame actions that led from frame indices[k] - stride
    to frame indices[k] (actions[i] leads from frame i-1 to i), clipped at the clip's start. At
    stride 1 this is actions[indices]. A model seeing keyframes 16 frames apart is thus told
    everything the ego did between them, not the one action at the keyframe."""
    if stride < 1:
        raise ValueError(f"stride={stride} must be >= 1")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= len(actions)):
        raise ValueError(f"indices span [{indices.min()}, {indices.max()}]; allowed [0, {len(actions) - 1}]")
    sums = np.concatenate([np.zeros((1, actions.shape[1])), np.cumsum(actions, axis=0, dtype=np.float64)])
    first = np.maximum(indices - stride + 1, 0)  # (t,)
    mean = (sums[indices + 1] - sums[first]) / (indices + 1 - first)[:, None]  # (t, 2)
    return mean.astype(np.float32)
