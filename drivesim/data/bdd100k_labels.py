"""BDD100K (Scalabel format) labels: parsing, and turning sparse keyframe labels into
per-video-frame annotations.

Accepted JSON shapes (one file may hold one or many videos):
- a video object `{"name", "attributes": {"timeofday"}, "frames": [...]}` or a list of them;
- a list of frame objects with `videoName` (the box-tracking "MOT" files), or a dict
  `{"frames": [...]}` of such frames (a Scalabel dataset).
A frame gives its time by `timestamp` (milliseconds) or `frameIndex` / `index` (counted at
`label_hz`, 5 Hz for BDD100K tracks). Labels: `category`, `id` (track), `box2d {x1, y1,
x2, y2}` in source-video pixels; labels without `box2d` are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from drivesim.data.annotations import ClipBoxes, FrameBoxes
from drivesim.data.labels import BOX_CLASSES, UNKNOWN

TIMEOFDAY_MAP: dict[str, str] = {
    "daytime": "day",
    "night": "night",
    "dawn/dusk": "dawn_dusk",
    "undefined": UNKNOWN,
}
# BDD100K category -> BOX_CLASSES name; IGNORED_CATEGORIES are dropped; anything else -> "other".
CATEGORY_MAP: dict[str, str] = {
    "car": "car",
    "truck": "truck",
    "bus": "bus",
    "train": "train",
    "motorcycle": "motorcycle",
    "motor": "motorcycle",
    "bicycle": "bicycle",
    "bike": "bicycle",
    "pedestrian": "pedestrian",
    "person": "pedestrian",
    "other person": "pedestrian",
    "rider": "rider",
    "trailer": "other",
    "other vehicle": "other",
}
IGNORED_CATEGORIES: frozenset[str] = frozenset({"traffic light", "traffic sign", "drivable area", "lane"})
VEHICLE_CATEGORIES: tuple[str, ...] = ("car", "truck", "bus", "train", "trailer", "other vehicle")
_VIDEO_SUFFIXES = (".mov", ".mp4", ".avi", ".mkv", ".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class BddBox:
    category: str  # raw BDD100K category
    track: str | None
    xyxy: tuple[float, float, float, float]  # source pixels


@dataclass(frozen=True)
class BddKeyframe:
    time_s: float
    boxes: tuple[BddBox, ...]


@dataclass(frozen=True)
class BddVideoLabels:
    name: str  # video name without extension
    timeofday: str  # raw attribute value ("undefined" when absent)
    keyframes: tuple[BddKeyframe, ...]
    source_file: str


def video_stem(name: str) -> str:
    """'videos/train/b1c66a42-6f7d68ca.mov' -> 'b1c66a42-6f7d68ca'."""
    base = PurePosixPath(name.replace("\\", "/")).name
    for suffix in _VIDEO_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"field {where}={value!r} must be a finite number")
    return float(value)


def _parse_box(label: object, where: str) -> BddBox | None:
    if not isinstance(label, dict):
        raise ValueError(f"field {where} must be an object, got {type(label).__name__}")
    category = label.get("category")
    if not isinstance(category, str) or not category:
        raise ValueError(f"field {where}.category={category!r} must be a non-empty string")
    box = label.get("box2d")
    if box is None:
        return None
    if not isinstance(box, dict):
        raise ValueError(f"field {where}.box2d must be an object with x1, y1, x2, y2")
    xyxy = tuple(_number(box.get(k), f"{where}.box2d.{k}") for k in ("x1", "y1", "x2", "y2"))
    track = label.get("id")
    if track is not None and not isinstance(track, str | int):
        raise ValueError(f"field {where}.id={track!r} must be a string or an integer")
    return BddBox(category=category, track=None if track is None else str(track), xyxy=xyxy)


def _parse_frame(frame: object, where: str, label_hz: float) -> BddKeyframe:
    if not isinstance(frame, dict):
        raise ValueError(f"field {where} must be an object, got {type(frame).__name__}")
    if frame.get("timestamp") is not None:
        time_s = _number(frame["timestamp"], f"{where}.timestamp") / 1000.0
    elif frame.get("frameIndex") is not None:
        time_s = _number(frame["frameIndex"], f"{where}.frameIndex") / label_hz
    elif frame.get("index") is not None:
        time_s = _number(frame["index"], f"{where}.index") / label_hz
    else:
        raise ValueError(f"field {where}.frameIndex is missing (or give 'index' or 'timestamp')")
    labels = frame.get("labels") or []
    if not isinstance(labels, list):
        raise ValueError(f"field {where}.labels must be a list")
    boxes = [_parse_box(label, f"{where}.labels[{k}]") for k, label in enumerate(labels)]
    return BddKeyframe(time_s=time_s, boxes=tuple(b for b in boxes if b is not None))


def _timeofday(obj: dict, where: str) -> str | None:
    attributes = obj.get("attributes")
    if attributes is None:
        return None
    if not isinstance(attributes, dict):
        raise ValueError(f"field {where}.attributes must be an object")
    value = attributes.get("timeofday")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {where}.attributes.timeofday={value!r} must be a string")
    return value


def _video(obj: dict, where: str, source: str, label_hz: float) -> BddVideoLabels:
    name = obj.get("name") or obj.get("videoName")
    if not isinstance(name, str) or not name:
        raise ValueError(f"field {where}.name={name!r} must be the video name")
    frames = obj.get("frames")
    if not isinstance(frames, list):
        raise ValueError(f"field {where}.frames must be a list")
    keyframes = tuple(_parse_frame(f, f"{where}.frames[{k}]", label_hz) for k, f in enumerate(frames))
    frame_tod = [_timeofday(f, f"{where}.frames[{k}]") for k, f in enumerate(frames) if isinstance(f, dict)]
    tod = _timeofday(obj, where) or next((t for t in frame_tod if t), None) or "undefined"
    return BddVideoLabels(name=video_stem(name), timeofday=tod, keyframes=keyframes, source_file=source)


def _group_frames(frames: list, where: str, source: str, label_hz: float) -> list[BddVideoLabels]:
    """Frame objects with `videoName` (MOT style) -> one BddVideoLabels per video."""
    groups: dict[str, list[dict]] = {}
    for k, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise ValueError(f"field {where}[{k}] must be an object, got {type(frame).__name__}")
        name = frame.get("videoName") or Path(source).stem
        if not isinstance(name, str):
            raise ValueError(f"field {where}[{k}].videoName={name!r} must be a string")
        groups.setdefault(name, []).append(frame)
    return [
        _video({"name": name, "frames": group}, f"{where}<videoName={name}>", source, label_hz)
        for name, group in groups.items()
    ]


def parse_label_file(path: str | Path, label_hz: float = 5.0) -> list[BddVideoLabels]:
    """Every video's labels in one JSON file; ValueError names the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON label file: {exc}") from None
    try:
        if isinstance(data, dict) and "name" in data and "frames" in data:
            return [_video(data, "$", str(path), label_hz)]
        if isinstance(data, dict) and isinstance(data.get("frames"), list):
            return _group_frames(data["frames"], "$.frames", str(path), label_hz)
        if isinstance(data, list) and all(isinstance(d, dict) and "frames" in d for d in data):
            return [_video(d, f"$[{k}]", str(path), label_hz) for k, d in enumerate(data)]
        if isinstance(data, list):
            return _group_frames(data, "$", str(path), label_hz)
        raise ValueError("field $ must be a video object, a list of videos or a list of frames")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def crowdedness_from_counts(mean_vehicles: float | None, thresholds: Sequence[float]) -> str:
    """mean vehicle boxes per labelled frame -> low (< t0) / medium (< t1) / high; None -> unknown."""
    low, high = thresholds
    if mean_vehicles is None:
        return UNKNOWN
    if mean_vehicles < low:
        return "low"
    if mean_vehicles < high:
        return "medium"
    return "high"


def mean_vehicle_count(labels: BddVideoLabels, vehicle_categories: Sequence[str]) -> float | None:
    if not labels.keyframes:
        return None
    vehicles = set(vehicle_categories)
    return float(np.mean([sum(b.category in vehicles for b in kf.boxes) for kf in labels.keyframes]))


@dataclass(frozen=True)
class KeyframeMapping:
    boxes: ClipBoxes
    dropped_keyframes: int  # keyframes whose time falls outside the video


def _frame_boxes(boxes: list[tuple[int, int, np.ndarray]]) -> FrameBoxes:
    if not boxes:
        return FrameBoxes.empty()
    return FrameBoxes(
        xyxy=np.stack([b[2] for b in boxes]).astype(np.float32),
        classes=np.array([b[0] for b in boxes], np.int64),
        track_ids=np.array([b[1] for b in boxes], np.int64),
    )


def map_keyframes(
    labels: BddVideoLabels,
    num_frames: int,
    fps: float,
    source_size: tuple[int, int],
    interpolate: bool = True,
) -> KeyframeMapping:
    """Place keyframe boxes on video frame round(time_s * fps), normalised by the source
    (height, width). With `interpolate`, frames between two keyframes get each track's box
    linearly interpolated (a track seen at one end only is held on that end's half), and
    every frame from the first to the last keyframe counts as labelled; otherwise only
    keyframes are labelled."""
    h, w = source_size
    scale = np.array([w, h, w, h], np.float64)
    track_index: dict[str, int] = {}
    keyed: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    dropped = 0
    for kf in labels.keyframes:
        j = round(kf.time_s * fps)
        if not 0 <= j < num_frames:
            dropped += 1
            continue
        entries = []
        for box in kf.boxes:
            if box.category in IGNORED_CATEGORIES:
                continue
            cls = BOX_CLASSES.index(CATEGORY_MAP.get(box.category, "other"))
            track = -1 if box.track is None else track_index.setdefault(box.track, len(track_index))
            x1, y1, x2, y2 = np.clip(np.array(box.xyxy) / scale, 0.0, 1.0)
            entries.append((cls, track, np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])))
        keyed[j] = entries  # a later keyframe on the same video frame wins
    frames = [FrameBoxes.empty() for _ in range(num_frames)]
    labelled = np.zeros(num_frames, bool)
    keys = sorted(keyed)
    for j in keys:
        frames[j] = _frame_boxes(keyed[j])
        labelled[j] = True
    if interpolate:
        for j0, j1 in zip(keys, keys[1:]):
            left = {t: (c, b) for c, t, b in keyed[j0] if t >= 0}
            right = {t: (c, b) for c, t, b in keyed[j1] if t >= 0}
            for j in range(j0 + 1, j1):
                a = (j - j0) / (j1 - j0)
                row = [(c, t, (1 - a) * b + a * right[t][1]) for t, (c, b) in left.items() if t in right]
                if a < 0.5:
                    row += [(c, t, b) for c, t, b in keyed[j0] if t < 0 or t not in right]
                else:
                    row += [(c, t, b) for c, t, b in keyed[j1] if t < 0 or t not in left]
                frames[j] = _frame_boxes(row)
                labelled[j] = True
    return KeyframeMapping(boxes=ClipBoxes.from_frames(frames, labelled), dropped_keyframes=dropped)
