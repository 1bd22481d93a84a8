"""A dataset folder: `manifest.jsonl`, `videos/<id>.mp4`, `annotations/<id>.npz`.

`open_dataset` reads and validates the manifest; `write_clip` writes one clip's
files (video first, then annotations, each atomically) and returns its record,
which the caller adds to a `ManifestWriter` last, so the manifest never names a clip
whose files are incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivesim.data.annotations import ClipAnnotations, load_annotations, save_annotations
from drivesim.data.manifest import MANIFEST_NAME, ClipRecord, read_manifest
from drivesim.data.video import VideoReader, VideoWriter

VIDEO_DIR = "videos"
ANNOTATION_DIR = "annotations"


@dataclass(frozen=True)
class DatasetFolder:
    root: Path
    clips: tuple[ClipRecord, ...]

    def clip(self, clip_id: str) -> ClipRecord:
        for record in self.clips:
            if record.id == clip_id:
                return record
        shown = [r.id for r in self.clips[:5]]
        raise ValueError(
            f"clip={clip_id!r} is not in {self.root / MANIFEST_NAME} ({len(self.clips)} clips, e.g. {shown})"
        )

    def video_path(self, record: ClipRecord) -> Path:
        return self.root / record.video

    def annotation_path(self, record: ClipRecord) -> Path | None:
        return None if record.annotations is None else self.root / record.annotations

    def open_video(self, record: ClipRecord) -> VideoReader:
        return VideoReader(self.video_path(record))

    def load_annotations(self, record: ClipRecord) -> ClipAnnotations | None:
        """The clip's annotations (validated; frame count checked against the manifest)."""
        path = self.annotation_path(record)
        return None if path is None else load_annotations(path, expected_num_frames=record.num_frames)

    def split(self, split: str) -> tuple[ClipRecord, ...]:
        return tuple(r for r in self.clips if r.split == split)


def open_dataset(root: str | Path) -> DatasetFolder:
    """Open a dataset folder (validates the manifest, not the video files)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    return DatasetFolder(root=root, clips=tuple(read_manifest(root / MANIFEST_NAME)))


@dataclass(frozen=True)
class ClipLabels:
    """Everything in a manifest line that is not measured from the frames."""

    id: str
    fps: float
    time_of_day: str
    crowdedness: str
    split: str
    source: str
    seed: int | None = None


@dataclass(frozen=True)
class WrittenVideo:
    video: str  # path relative to the dataset folder
    height: int
    width: int
    num_frames: int


def write_clip_video(
    root: str | Path, clip_id: str, fps: float, frames: Iterable[np.ndarray], crf: int = 18
) -> WrittenVideo:
    """Encode `frames` (`h w c` uint8, streamed) to videos/<id>.mp4, atomically."""
    video_rel = f"{VIDEO_DIR}/{clip_id}.mp4"
    writer: VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = VideoWriter(Path(root) / video_rel, fps, h, w, crf=crf)
            writer.write(frame)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError(f"clip {clip_id!r}: no frames to write")
    writer.close()
    return WrittenVideo(video=video_rel, height=writer.height, width=writer.width, num_frames=writer.num_frames)


def finish_clip(
    root: str | Path, labels: ClipLabels, video: WrittenVideo, annotations: ClipAnnotations | None
) -> ClipRecord:
    """Save the annotations (atomically) of a written video and return its manifest record."""
    ann_rel = None
    if annotations is not None:
        if annotations.num_frames != video.num_frames:
            raise ValueError(
                f"clip {labels.id!r}: annotations have num_frames={annotations.num_frames}, "
                f"the video has {video.num_frames}"
            )
        ann_rel = f"{ANNOTATION_DIR}/{labels.id}.npz"
        save_annotations(Path(root) / ann_rel, annotations)
    return ClipRecord(
        id=labels.id,
        video=video.video,
        annotations=ann_rel,
        fps=float(labels.fps),
        height=video.height,
        width=video.width,
        num_frames=video.num_frames,
        time_of_day=labels.time_of_day,
        crowdedness=labels.crowdedness,
        split=labels.split,
        source=labels.source,
        seed=labels.seed,
    )


def write_clip(
    root: str | Path,
    labels: ClipLabels,
    frames: Iterable[np.ndarray],
    annotations: ClipAnnotations | None = None,
    crf: int = 18,
) -> ClipRecord:
    """Write a clip's video and annotations; returns the record (not yet in any manifest)."""
    video = write_clip_video(root, labels.id, labels.fps, frames, crf=crf)
    return finish_clip(root, labels, video, annotations)
