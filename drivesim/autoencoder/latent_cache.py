"""Latent cache: a dataset encoded once, so diffusion training never re-encodes frames.

Layout of a cache folder:
    cache.yaml            format, version, latent_scale, downsampling factor, image size,
                          the checkpoint and dataset it came from, `posterior: mean`
    manifest.jsonl        one line a clip: id, latents (relative path), num_frames, fps,
                          time_of_day, crowdedness, split, source
    latents/<id>.safetensors
        latents (t, C, h, w) float32: posterior MEANS of the frozen encoder, unscaled
        (the reader multiplies by latent_scale; the mean, not a sample, so the cache is
        deterministic and the decoder's input distribution matches stage-2 evaluation)
        and, when the clip has them: box_offsets (t+1,), boxes (n, 4) normalised xyxy,
        box_classes (n,), box_track_ids (n,), boxes_labelled (t,), actions (t, 2),
        ego (t, 3), events (t, 2) bool.
A clip is added to the manifest only after its file is written (atomically), so an
interrupted run resumes where it stopped; unreadable clips are skipped and reported.
`LatentWindowDataset` reads windows of T latent frames with their labels and boxes.
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from einops import rearrange
from safetensors.torch import load_file
from tqdm import tqdm

from drivesim.autoencoder.model import Autoencoder
from drivesim.data.annotations import interval_actions
from drivesim.data.atomic import atomic_write_text
from drivesim.data.dataset import open_dataset
from drivesim.data.labels import SPLITS, crowdedness_index, time_of_day_index
from drivesim.data.video import CorruptVideoError
from drivesim.model_folder import atomic_save_tensors

CACHE_FORMAT = "drivesim.latent_cache"
CACHE_VERSION = 1
_LRU_CLIPS = 64


@dataclass(frozen=True)
class CachedClip:
    """One manifest line of a latent cache."""

    id: str
    latents: str
    num_frames: int
    fps: float
    time_of_day: str
    crowdedness: str
    split: str
    source: str


@dataclass(frozen=True)
class LatentCacheSummary:
    root: Path
    encoded: int  # clips encoded by this call
    reused: int  # clips already in the cache
    skipped: dict[str, str]  # clip id -> reason
    frames: int  # frames encoded by this call
    latent_scale: float


def read_cache(root: str | Path) -> tuple[dict[str, Any], list[CachedClip]]:
    """(cache.yaml contents, manifest records) of a latent cache; errors name the file."""
    root = Path(root)
    meta_path, manifest_path = root / "cache.yaml", root / "manifest.jsonl"
    if not meta_path.is_file() or not manifest_path.is_file():
        raise FileNotFoundError(f"{root} is not a latent cache (needs cache.yaml and manifest.jsonl)")
    meta = yaml.safe_load(meta_path.read_text()) or {}
    if meta.get("format") != CACHE_FORMAT or meta.get("version") != CACHE_VERSION:
        raise ValueError(
            f"{meta_path}: format={meta.get('format')!r} version={meta.get('version')!r}; "
            f"expected {CACHE_FORMAT!r} version {CACHE_VERSION}"
        )
    records = []
    for lineno, line in enumerate(manifest_path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(CachedClip(**json.loads(line)))
            except (TypeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{manifest_path}:{lineno}: {exc}") from None
    return meta, records


def _encode_frames(
    model: Autoencoder, frames: list[np.ndarray], batch_frames: int, device: torch.device
) -> torch.Tensor:
    video = torch.from_numpy(np.stack(frames))  # t h w c uint8
    x = rearrange(video, "t h w c -> t c h w").contiguous().float() / 127.5 - 1.0
    parts = [model.encode(x[i : i + batch_frames].to(device)).mode().cpu() for i in range(0, x.shape[0], batch_frames)]
    return torch.cat(parts)  # t C h w


def _annotation_tensors(ann: Any) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if ann is None:
        return out
    if ann.boxes is not None:
        out["box_offsets"] = torch.from_numpy(ann.boxes.offsets.astype(np.int64))
        out["boxes"] = torch.from_numpy(ann.boxes.xyxy.astype(np.float32))
        out["box_classes"] = torch.from_numpy(ann.boxes.classes.astype(np.int64))
        out["box_track_ids"] = torch.from_numpy(ann.boxes.track_ids.astype(np.int64))
        out["boxes_labelled"] = torch.from_numpy(ann.boxes.labelled.astype(bool))
    if ann.actions is not None:
        out["actions"] = torch.from_numpy(ann.actions.astype(np.float32))
    if ann.ego is not None:
        out["ego"] = torch.from_numpy(ann.ego.astype(np.float32))
    if ann.events is not None:
        out["events"] = torch.from_numpy(ann.events.astype(bool))
    return out


@torch.no_grad()
def encode_dataset(
    dataset: str | Path,
    autoencoder: Autoencoder,
    out: str | Path,
    height: int,
    width: int,
    batch_frames: int = 64,
    splits: tuple[str, ...] | None = None,
    source_checkpoint: str = "",
) -> LatentCacheSummary:
    """Encode every clip of `dataset` (of `splits`, default all) into the cache folder `out`."""
    autoencoder.cfg.latent_size(height, width)
    bad_splits = [s for s in (splits or ()) if s not in SPLITS]
    if bad_splits:
        raise ValueError(f"splits={list(splits or ())} has {bad_splits}; allowed {list(SPLITS)}")
    folder = open_dataset(dataset)
    out = Path(out)
    device = next(autoencoder.parameters()).device
    autoencoder.eval()
    scale = float(autoencoder.latent_scale)
    meta = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "latent_scale": scale,
        "posterior": "mean",
        "downsample_factor": autoencoder.cfg.downsample_factor,
        "latent_channels": autoencoder.cfg.latent_channels,
        "image_size": [height, width],
        "latent_size": list(autoencoder.cfg.latent_size(height, width)),
        "checkpoint": source_checkpoint,
        "dataset": str(Path(dataset).resolve()),
    }
    done: dict[str, CachedClip] = {}
    if (out / "manifest.jsonl").exists():
        old_meta, old_records = read_cache(out)
        for key in ("latent_scale", "image_size", "checkpoint"):
            if old_meta.get(key) != meta[key]:
                raise ValueError(
                    f"{out}: existing cache has {key}={old_meta.get(key)!r}, this run {meta[key]!r}; "
                    "use a new `out` folder"
                )
        done = {r.id: r for r in old_records}
    atomic_write_text(out / "cache.yaml", yaml.safe_dump(meta, sort_keys=False))
    records = [r for r in folder.clips if splits is None or r.split in splits]
    encoded, frames_done, skipped = 0, 0, {}
    for record in tqdm(records, desc="encoding latents"):
        if record.id in done:
            continue
        try:
            with folder.open_video(record) as reader:
                frames = [
                    f
                    if f.shape[:2] == (height, width)
                    else cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                    for f in reader.frames()
                ]
            ann = folder.load_annotations(record)
            if not frames:
                raise CorruptVideoError(f"{folder.video_path(record)}: no frames")
        except (CorruptVideoError, ValueError, OSError) as exc:
            warnings.warn(f"skipping clip {record.id!r}: {exc}", stacklevel=2)
            skipped[record.id] = str(exc)
            continue
        num_frames = len(frames)
        if ann is not None and ann.num_frames != num_frames:
            skipped[record.id] = f"video has {num_frames} frames, annotations {ann.num_frames}"
            warnings.warn(f"skipping clip {record.id!r}: {skipped[record.id]}", stacklevel=2)
            continue
        tensors = {"latents": _encode_frames(autoencoder, frames, batch_frames, device)}
        tensors |= _annotation_tensors(ann)
        rel = f"latents/{record.id}.safetensors"
        atomic_save_tensors(out / rel, tensors)
        done[record.id] = CachedClip(
            id=record.id,
            latents=rel,
            num_frames=num_frames,
            fps=record.fps,
            time_of_day=record.time_of_day,
            crowdedness=record.crowdedness,
            split=record.split,
            source=record.source,
        )
        atomic_write_text(out / "manifest.jsonl", "".join(json.dumps(asdict(r)) + "\n" for r in done.values()))
        encoded += 1
        frames_done += num_frames
    return LatentCacheSummary(
        root=out,
        encoded=encoded,
        reused=len(records) - encoded - len(skipped),
        skipped=skipped,
        frames=frames_done,
        latent_scale=scale,
    )


@dataclass(frozen=True)
class LatentWindowConfig:
    num_frames: int = 8
    stride: int = 1
    split: str | None = "train"
    max_boxes: int = 16
    window_step: int | None = None  # None: the window span (non-overlapping windows)

    def __post_init__(self) -> None:
        for name in ("num_frames", "stride", "max_boxes"):
            if getattr(self, name) < 1:
                raise ValueError(f"LatentWindowConfig.{name}={getattr(self, name)} must be >= 1")
        if self.window_step is not None and self.window_step < 1:
            raise ValueError(f"LatentWindowConfig.window_step={self.window_step} must be >= 1 or None")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"LatentWindowConfig.split={self.split!r}; expected one of {list(SPLITS)} or None")

    @property
    def span(self) -> int:
        return (self.num_frames - 1) * self.stride + 1


@dataclass
class LatentWindow:
    latents: torch.Tensor  # (t, C, h, w) scaled by latent_scale
    time_of_day: int  # index, -1 unknown
    crowdedness: int
    boxes: torch.Tensor  # (t, n, 4) normalised xyxy, zero where padded
    box_classes: torch.Tensor  # (t, n) int64
    box_track_ids: torch.Tensor  # (t, n) int64, -1 where padded
    box_mask: torch.Tensor  # (t, n) bool
    boxes_labelled: torch.Tensor  # (t,) bool
    actions: torch.Tensor  # (t, 2), mean over each stride interval (interval_actions); zeros when absent
    ego_speed: torch.Tensor  # (t,), zeros when absent
    ego_pose: torch.Tensor  # (t, 2) lateral offset from the road centre (lane widths), heading (rad); 0 if absent
    events: torch.Tensor  # (t, 2) bool
    has_actions: bool
    clip_id: str
    start: int


@dataclass
class LatentWindowBatch:
    latents: torch.Tensor  # (b, t, C, h, w)
    time_of_day: torch.Tensor  # (b,)
    crowdedness: torch.Tensor  # (b,)
    boxes: torch.Tensor  # (b, t, n, 4)
    box_classes: torch.Tensor  # (b, t, n)
    box_track_ids: torch.Tensor  # (b, t, n)
    box_mask: torch.Tensor  # (b, t, n)
    boxes_labelled: torch.Tensor  # (b, t)
    actions: torch.Tensor  # (b, t, 2)
    ego_speed: torch.Tensor  # (b, t)
    ego_pose: torch.Tensor  # (b, t, 2)
    events: torch.Tensor  # (b, t, 2)
    has_actions: torch.Tensor  # (b,) bool
    clip_ids: list[str]
    starts: torch.Tensor  # (b,)


def collate_latent_windows(samples: list[LatentWindow]) -> LatentWindowBatch:
    if not samples:
        raise ValueError("collate_latent_windows needs at least one sample")
    names = ("latents", "boxes", "box_classes", "box_track_ids", "box_mask", "boxes_labelled")
    names += ("actions", "ego_speed", "ego_pose", "events")
    stacked = {n: torch.stack([getattr(s, n) for s in samples]) for n in names}
    return LatentWindowBatch(
        **stacked,
        time_of_day=torch.tensor([s.time_of_day for s in samples]),
        crowdedness=torch.tensor([s.crowdedness for s in samples]),
        has_actions=torch.tensor([s.has_actions for s in samples]),
        clip_ids=[s.clip_id for s in samples],
        starts=torch.tensor([s.start for s in samples]),
    )


def largest_boxes(xyxy: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the n largest boxes of xyxy (m, 4) by area, in their original order: the boxes a
    frame is conditioned on when it has more than n."""
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return torch.argsort(-area, stable=True)[:n].sort().values


def frame_boxes(tensors: Mapping[str, torch.Tensor], frame: int, n: int) -> tuple[torch.Tensor, ...]:
    """The n largest boxes of one frame of a cached clip (its tensors `box_offsets`, `boxes`,
    `box_classes`, `box_track_ids`): xyxy (m, 4), classes (m,), track ids (m,), m <= n."""
    a, b = int(tensors["box_offsets"][frame]), int(tensors["box_offsets"][frame + 1])
    keep = largest_boxes(tensors["boxes"][a:b], n)
    return tuple(tensors[k][a:b][keep] for k in ("boxes", "box_classes", "box_track_ids"))


def _window_actions(data: dict[str, torch.Tensor], frames: torch.Tensor, stride: int) -> torch.Tensor:
    """(t, 2) actions of a window's frames: the mean over each `stride` interval (`interval_actions`)."""
    if "actions" not in data:
        return torch.zeros(frames.numel(), 2)
    return torch.from_numpy(interval_actions(data["actions"].numpy(), frames.numpy(), stride))


class LatentWindowDataset(torch.utils.data.Dataset):
    """Windows of `num_frames` latent frames (at `stride`) from a latent cache folder."""

    def __init__(self, root: str | Path, config: LatentWindowConfig) -> None:
        self.root = Path(root)
        self.config = config
        meta, records = read_cache(self.root)
        self.latent_scale = float(meta["latent_scale"])
        self.meta = meta
        self.clips = [
            r for r in records if (config.split is None or r.split == config.split) and r.num_frames >= config.span
        ]
        if not self.clips:
            raise ValueError(
                f"latent cache {self.root} has no clip of split={config.split!r} with >= {config.span} frames"
            )
        step = config.window_step or config.span
        counts = [(r.num_frames - config.span) // step + 1 for r in self.clips]
        self._step = step
        self._first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()

    def __len__(self) -> int:
        return int(self._first[-1])

    def _tensors(self, c: int) -> dict[str, torch.Tensor]:
        if c not in self._cache:
            self._cache[c] = load_file(str(self.root / self.clips[c].latents))
            if len(self._cache) > _LRU_CLIPS:
                self._cache.popitem(last=False)
        return self._cache[c]

    def __getitem__(self, index: int) -> LatentWindow:
        if not 0 <= index < len(self):
            raise IndexError(f"window index {index} out of range [0, {len(self)})")
        cfg = self.config
        c = int(np.searchsorted(self._first, index, side="right") - 1)
        start = (index - int(self._first[c])) * self._step
        record, data = self.clips[c], self._tensors(c)
        frames = torch.arange(start, start + cfg.num_frames * cfg.stride, cfg.stride)
        t, n = cfg.num_frames, cfg.max_boxes
        boxes, classes = torch.zeros(t, n, 4), torch.zeros(t, n, dtype=torch.int64)
        track_ids, mask = torch.full((t, n), -1, dtype=torch.int64), torch.zeros(t, n, dtype=torch.bool)
        labelled = torch.zeros(t, dtype=torch.bool)
        if "box_offsets" in data:
            labelled = data["boxes_labelled"][frames]
            for k, i in enumerate(frames.tolist()):
                xyxy, box_classes, ids = frame_boxes(data, i, n)
                m = xyxy.shape[0]
                boxes[k, :m], classes[k, :m], track_ids[k, :m], mask[k, :m] = xyxy, box_classes, ids, True
        return LatentWindow(
            latents=data["latents"][frames].float() * self.latent_scale,
            time_of_day=time_of_day_index(record.time_of_day),
            crowdedness=crowdedness_index(record.crowdedness),
            boxes=boxes,
            box_classes=classes,
            box_track_ids=track_ids,
            box_mask=mask,
            boxes_labelled=labelled,
            actions=_window_actions(data, frames, cfg.stride),
            ego_speed=data["ego"][frames, 0] if "ego" in data else torch.zeros(t),
            ego_pose=data["ego"][frames, 1:3] if "ego" in data else torch.zeros(t, 2),
            events=data["events"][frames] if "events" in data else torch.zeros(t, 2, dtype=torch.bool),
            has_actions="actions" in data,
            clip_id=record.id,
            start=start,
        )
