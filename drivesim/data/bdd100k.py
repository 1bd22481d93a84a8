"""BDD100K -> drivesim dataset format (`drivesim data bdd100k`).

Every video under `videos` (.mov / .mp4, searched recursively) becomes one clip,
re-encoded to H.264 (optionally resized with INTER_AREA). Labels come from the
Scalabel JSON files under `labels` (see bdd100k_labels.py): time of day from the
`timeofday` attribute, crowdedness from the mean vehicle box count per labelled
frame, boxes placed on the video frames. Videos that cannot be read are skipped and
reported (also in `bdd100k_report.json`); a video without labels gets unknown labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from drivesim.data.annotations import ClipAnnotations
from drivesim.data.atomic import atomic_write_text
from drivesim.data.bdd100k_labels import (
    TIMEOFDAY_MAP,
    VEHICLE_CATEGORIES,
    BddVideoLabels,
    crowdedness_from_counts,
    map_keyframes,
    mean_vehicle_count,
    parse_label_file,
)
from drivesim.data.dataset import ClipLabels, finish_clip, write_clip_video
from drivesim.data.labels import SPLITS, UNKNOWN, hash_split
from drivesim.data.manifest import MANIFEST_NAME, ClipRecord, ManifestWriter
from drivesim.data.video import VideoReader

SOURCE = "bdd100k"
REPORT_NAME = "bdd100k_report.json"
VIDEO_SUFFIXES = (".mov", ".mp4")


@dataclass(frozen=True)
class Bdd100kConfig:
    videos: str  # folder searched recursively for .mov / .mp4
    out: str  # dataset folder (clips already in its manifest are kept and not redone)
    labels: str | None = None  # folder searched recursively for Scalabel .json files
    height: int | None = None  # output size; None keeps the source size (made even)
    width: int | None = None
    label_hz: float = 5.0  # rate of frameIndex / index in the labels (BDD100K tracks: 5 Hz)
    interpolate: bool = True  # interpolate track boxes between labelled frames
    crowd_thresholds: tuple[float, float] = (4.0, 10.0)  # mean vehicles: < a low, < b medium, else high
    vehicle_categories: tuple[str, ...] = VEHICLE_CATEGORIES
    split: str = "auto"  # auto: train/val/test folder in the video's path, else a hash; or a fixed split
    require_labels: bool = False  # skip videos without labels instead of keeping them unlabelled
    max_videos: int | None = None
    crf: int = 18

    def __post_init__(self) -> None:
        if (self.height is None) != (self.width is None):
            raise ValueError(f"height={self.height} and width={self.width}: give both or neither")
        if self.height is not None and (self.height < 2 or self.height % 2 or self.width < 2 or self.width % 2):
            raise ValueError(f"height={self.height}, width={self.width} must be even numbers >= 2")
        if self.label_hz <= 0:
            raise ValueError(f"label_hz={self.label_hz} must be > 0")
        if len(self.crowd_thresholds) != 2 or not 0 <= self.crowd_thresholds[0] <= self.crowd_thresholds[1]:
            raise ValueError(f"crowd_thresholds={list(self.crowd_thresholds)} must be two numbers 0 <= a <= b")
        if self.split not in ("auto", "hash", *SPLITS):
            raise ValueError(f"split={self.split!r} is not allowed; expected one of {['auto', 'hash', *SPLITS]}")


@dataclass(frozen=True)
class SkippedVideo:
    path: str
    reason: str


@dataclass
class Bdd100kResult:
    out: Path
    records: list[ClipRecord]  # every clip in the manifest
    converted: int = 0
    unlabelled: int = 0  # converted without labels
    skipped: list[SkippedVideo] = field(default_factory=list)
    bad_label_files: list[SkippedVideo] = field(default_factory=list)
    labels_without_video: list[str] = field(default_factory=list)
    dropped_keyframes: int = 0  # labelled frames past the end of their video


def _safe_id(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", stem)
    return cleaned if cleaned[:1].isalnum() else f"v{cleaned}"


def _split_for(path: Path, videos_root: Path, clip_id: str, mode: str) -> str:
    if mode in SPLITS:
        return mode
    if mode == "auto":
        for part in reversed(path.relative_to(videos_root).parts[:-1]):
            if part in SPLITS:
                return part
    return hash_split(clip_id)


def load_labels(labels_root: Path, label_hz: float, result: Bdd100kResult) -> dict[str, BddVideoLabels]:
    """Video stem -> labels, from every .json under labels_root; bad files are reported."""
    by_name: dict[str, BddVideoLabels] = {}
    for path in sorted(labels_root.rglob("*.json")):
        try:
            videos = parse_label_file(path, label_hz)
        except ValueError as exc:
            result.bad_label_files.append(SkippedVideo(str(path), str(exc)))
            continue
        for video in videos:
            by_name.setdefault(video.name, video)
    return by_name


def _frames(reader: VideoReader, size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    for frame in reader.frames():
        yield frame if size is None else cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def convert_video(
    path: Path, labels: BddVideoLabels | None, config: Bdd100kConfig, videos_root: Path
) -> tuple[ClipRecord, int]:
    """Convert one video; returns its record and the number of dropped keyframes.
    Raises CorruptVideoError / FileNotFoundError for unreadable videos."""
    clip_id = _safe_id(path.stem)
    with VideoReader(path) as reader:
        info = reader.info
        if config.height is not None:
            size: tuple[int, int] | None = (config.height, config.width)
        elif info.height % 2 or info.width % 2:
            size = (info.height - info.height % 2, info.width - info.width % 2)
        else:
            size = None
        video = write_clip_video(config.out, clip_id, info.fps, _frames(reader, size), crf=config.crf)
    annotations, dropped = None, 0
    time_of_day, crowdedness = UNKNOWN, UNKNOWN
    if labels is not None:
        time_of_day = TIMEOFDAY_MAP.get(labels.timeofday, UNKNOWN)
        mean = mean_vehicle_count(labels, config.vehicle_categories)
        crowdedness = crowdedness_from_counts(mean, config.crowd_thresholds)
        mapping = map_keyframes(labels, video.num_frames, info.fps, (info.height, info.width), config.interpolate)
        annotations = ClipAnnotations(num_frames=video.num_frames, boxes=mapping.boxes)
        dropped = mapping.dropped_keyframes
    clip_labels = ClipLabels(
        id=clip_id,
        fps=info.fps,
        time_of_day=time_of_day,
        crowdedness=crowdedness,
        split=_split_for(path, videos_root, clip_id, config.split),
        source=SOURCE,
    )
    return finish_clip(config.out, clip_labels, video, annotations), dropped


def convert_bdd100k(config: Bdd100kConfig) -> Bdd100kResult:
    videos_root = Path(config.videos)
    if not videos_root.is_dir():
        raise FileNotFoundError(f"videos={config.videos!r}: folder not found")
    if config.labels is not None and not Path(config.labels).is_dir():
        raise FileNotFoundError(f"labels={config.labels!r}: folder not found")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in videos_root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if config.max_videos is not None:
        paths = paths[: config.max_videos]
    if not paths:
        raise FileNotFoundError(f"videos={config.videos!r}: no {'/'.join(VIDEO_SUFFIXES)} files found")
    result = Bdd100kResult(out=out, records=[])
    labels = load_labels(Path(config.labels), config.label_hz, result) if config.labels is not None else {}
    stems = {p.stem for p in paths}
    result.labels_without_video = sorted(name for name in labels if name not in stems)
    with ManifestWriter(out / MANIFEST_NAME) as manifest:
        for path in tqdm(paths, desc="bdd100k", unit="video"):
            if _safe_id(path.stem) in manifest:
                continue
            video_labels = labels.get(path.stem)
            if video_labels is None and config.require_labels:
                result.skipped.append(SkippedVideo(str(path), "no labels (require_labels=true)"))
                continue
            try:
                record, dropped = convert_video(path, video_labels, config, videos_root)
            except (ValueError, FileNotFoundError) as exc:  # CorruptVideoError is a ValueError
                result.skipped.append(SkippedVideo(str(path), str(exc)))
                continue
            manifest.add(record)
            result.converted += 1
            result.unlabelled += video_labels is None
            result.dropped_keyframes += dropped
    result.records = manifest.records
    report = {k: v for k, v in asdict(result).items() if k not in ("out", "records")}
    atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    return result
