"""The dataset format and its readers and writers (docs/dataset_format.md).

A dataset folder holds `manifest.jsonl` (one line per clip), `videos/<id>.mp4` (H.264)
and `annotations/<id>.npz`. Modules: `manifest` (ClipRecord), `annotations`
(ClipAnnotations), `video` (streaming VideoWriter / VideoReader), `dataset` (open a
folder, write a clip), `windows` (torch training windows), `synth` (render from the
procedural world), `bdd100k` (adapter), `show` (storyboards).
"""

from drivesim.data.annotations import (
    ClipAnnotations,
    ClipBoxes,
    FrameBoxes,
    load_annotations,
    save_annotations,
)
from drivesim.data.dataset import ClipLabels, DatasetFolder, open_dataset, write_clip
from drivesim.data.manifest import ClipRecord, ManifestWriter, read_manifest, write_manifest
from drivesim.data.video import CorruptVideoError, VideoReader, VideoWriter

__all__ = [
    "ClipAnnotations",
    "ClipBoxes",
    "ClipLabels",
    "ClipRecord",
    "CorruptVideoError",
    "DatasetFolder",
    "FrameBoxes",
    "ManifestWriter",
    "VideoReader",
    "VideoWriter",
    "load_annotations",
    "open_dataset",
    "read_manifest",
    "save_annotations",
    "write_clip",
    "write_manifest",
]
