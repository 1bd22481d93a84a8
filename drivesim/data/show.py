"""Storyboard of one clip: evenly spaced frames with boxes, class names, track ids and
the clip's labels drawn on them (the picture behind `drivesim data show`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from einops import rearrange

from drivesim.data.annotations import ClipAnnotations, FrameBoxes
from drivesim.data.dataset import DatasetFolder
from drivesim.data.labels import BOX_CLASSES
from drivesim.data.manifest import ClipRecord

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_HEADER = 18  # pixels of text above each tile
_MIN_TILE_WIDTH = 384
# One RGB colour per BOX_CLASSES entry.
_CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 230, 255),
    (255, 170, 0),
    (255, 80, 200),
    (160, 160, 255),
    (120, 255, 120),
    (255, 255, 0),
    (255, 60, 60),
    (255, 140, 140),
    (200, 200, 200),
)


@dataclass(frozen=True)
class ShowConfig:
    dataset: str  # dataset folder
    out: str  # PNG path
    clip: str | None = None  # clip id; None: the first clip of the manifest
    frames: int = 8
    cols: int = 4
    scale: int = 0  # tile upscaling factor; 0: enough for tiles >= 384 px wide


def draw_boxes(tile: np.ndarray, boxes: FrameBoxes) -> np.ndarray:
    """Draw normalised boxes with 'class #track' labels onto an `h w c` uint8 tile (copy)."""
    out = np.ascontiguousarray(tile.copy())
    h, w = out.shape[:2]
    for xyxy, cls, track in zip(boxes.xyxy, boxes.classes, boxes.track_ids):
        x1, y1, x2, y2 = (xyxy * np.array([w, h, w, h])).round().astype(int)
        colour = _CLASS_COLOURS[int(cls)]
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        text = BOX_CLASSES[int(cls)] + ("" if track < 0 else f" #{int(track)}")
        cv2.putText(out, text, (x1, max(10, y1 - 3)), _FONT, 0.38, colour, 1, cv2.LINE_AA)
    return out


def _caption(record: ClipRecord, ann: ClipAnnotations | None, i: int) -> str:
    text = f"f{i} {i / record.fps:.2f}s"
    if ann is not None and ann.ego is not None:
        text += f" v={ann.ego[i, 0]:.1f}"
    if ann is not None and ann.actions is not None:
        text += f" a=({ann.actions[i, 0]:+.2f},{ann.actions[i, 1]:+.2f})"
    if ann is not None and ann.events is not None:
        text += " COLLISION" if ann.events[i, 0] else ""
        text += " OFF-ROAD" if ann.events[i, 1] else ""
    return text


def clip_storyboard(folder: DatasetFolder, record: ClipRecord, config: ShowConfig) -> np.ndarray:
    """The storyboard image, `H W c` uint8 RGB."""
    if config.frames < 1 or config.cols < 1 or config.scale < 0:
        raise ValueError(f"frames={config.frames} and cols={config.cols} must be >= 1, scale={config.scale} >= 0")
    ann = folder.load_annotations(record)
    indices = sorted(set(np.linspace(0, record.num_frames - 1, config.frames).round().astype(int).tolist()))
    with folder.open_video(record) as reader:
        frames = reader.read_frames(indices)  # (t, h, w, c) uint8
    h, w = frames.shape[1:3]
    scale = config.scale or max(1, math.ceil(_MIN_TILE_WIDTH / w))
    tiles = []
    for frame, i in zip(frames, indices):
        tile = cv2.resize(frame, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        if ann is not None and ann.boxes is not None and ann.boxes.labelled[i]:
            tile = draw_boxes(tile, ann.boxes.frame(i))
        header = np.zeros((_HEADER, tile.shape[1], 3), np.uint8)
        cv2.putText(header, _caption(record, ann, i), (3, 13), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([header, tile], axis=0))  # (header + h*scale, w*scale, c)
    cols = min(config.cols, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    tiles += [np.zeros_like(tiles[0])] * (rows * cols - len(tiles))
    grid = rearrange(np.stack(tiles), "(r k) h w c -> (r h) (k w) c", r=rows, k=cols)  # (rows*H, cols*W, c)
    title = np.zeros((24, grid.shape[1], 3), np.uint8)
    text = (
        f"{record.id}  time_of_day={record.time_of_day}  crowdedness={record.crowdedness}  "
        f"split={record.split}  source={record.source}  {record.num_frames} frames @ {record.fps:g} fps"
    )
    cv2.putText(title, text, (4, 17), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([title, grid], axis=0)  # (24 + rows*H, cols*W, c)
