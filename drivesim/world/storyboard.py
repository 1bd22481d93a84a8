"""Storyboards: a grid of frames with their boxes and captions (RGB uint8), for PNGs."""

from __future__ import annotations

import cv2
import numpy as np

from drivesim.world.types import VEHICLE_CLASSES, Boxes

CLASS_COLOURS = {"car": (255, 230, 0), "truck": (0, 230, 255)}
CAPTION_HEIGHT, PAD = 14, 2


def _draw_boxes(tile: np.ndarray, boxes: Boxes) -> None:
    h, w = tile.shape[:2]
    bh, bw = boxes.image_size
    scale = np.array([w / bw, h / bh, w / bw, h / bh], np.float32)
    for xyxy, cls, track in zip(boxes.xyxy * scale, boxes.classes, boxes.track_ids):
        x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
        colour = CLASS_COLOURS.get(VEHICLE_CLASSES[int(cls)], (255, 255, 255))
        cv2.rectangle(tile, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, 1)
        if w >= 192 and x2 - x1 >= 8:
            cv2.putText(tile, str(int(track)), (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_PLAIN, 0.7, colour, 1,
                        cv2.LINE_AA)


def storyboard(frames: list[np.ndarray], boxes: list[Boxes] | None = None, labels: list[str] | None = None,
               cols: int = 6) -> np.ndarray:
    """Arrange frames (each (h, w, 3) uint8; resized to the first one's size) in a grid with
    `cols` columns. Boxes (per frame, at any image size; None entries allowed) are drawn as
    rectangles (yellow cars, cyan trucks, track ids on large tiles); labels become captions
    above the tiles. Returns the (H, W, 3) uint8 RGB grid."""
    if not frames:
        raise ValueError("storyboard: frames is empty; expected a list of (h, w, 3) uint8 images")
    if cols < 1:
        raise ValueError(f"storyboard: cols={cols!r} is not allowed; expected an int >= 1")
    for name, seq in (("boxes", boxes), ("labels", labels)):
        if seq is not None and len(seq) != len(frames):
            raise ValueError(f"storyboard: {name} has {len(seq)} entries; expected one per frame ({len(frames)})")
    h, w = frames[0].shape[:2]
    cap = CAPTION_HEIGHT if labels is not None else 0
    rows = (len(frames) + cols - 1) // cols
    grid = np.full((rows * (h + cap + PAD) + PAD, cols * (w + PAD) + PAD, 3), 24, np.uint8)
    for i, frame in enumerate(frames):
        arr = np.asarray(frame)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"storyboard: frames[{i}] has shape {arr.shape} dtype {arr.dtype}; "
                             "expected (h, w, 3) uint8")
        tile = np.ascontiguousarray(arr if arr.shape[:2] == (h, w) else cv2.resize(arr, (w, h),
                                                                                  interpolation=cv2.INTER_AREA))
        if boxes is not None and boxes[i] is not None:
            tile = tile.copy()
            _draw_boxes(tile, boxes[i])
        r, c = divmod(i, cols)
        y0, x0 = PAD + r * (h + cap + PAD), PAD + c * (w + PAD)
        grid[y0 + cap: y0 + cap + h, x0: x0 + w] = tile
        if labels is not None:
            cv2.putText(grid, str(labels[i]), (x0 + 1, y0 + cap - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (235, 235, 235),
                        1, cv2.LINE_AA)
    return grid


def condition_storyboard(seed: int = 0, seconds: int = 6, height: int = 128, width: int = 256) -> np.ndarray:
    """Rows day/low, day/high, night/low, night/high of the procedural world driven by the
    behaviour policy, one frame per second, rendered at (height, width) with boxes."""
    from drivesim.world.policy import BehaviourPolicy
    from drivesim.world.world import World

    frames, boxes, labels = [], [], []
    for row, (tod, crowd) in enumerate([("day", "low"), ("day", "high"), ("night", "low"), ("night", "high")]):
        world = World()
        world.reset(seed=seed + row, time_of_day=tod, crowdedness=crowd)
        policy = BehaviourPolicy(seed + row)
        fps = world.config.fps
        for t in range(seconds * fps):
            action = policy.act(world)
            world.advance(action)
            if (t + 1) % fps == 0:
                frame = world.render(height, width)
                frames.append(frame.image)
                boxes.append(frame.boxes)
                labels.append(f"{tod}/{crowd} {(t + 1) // fps}s n={len(frame.boxes)} v={frame.ego.speed:.0f} "
                              f"a=[{action[0]:+.1f},{action[1]:+.1f}]")
    return storyboard(frames, boxes, labels, cols=seconds)


if __name__ == "__main__":
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "world_storyboard.png"
    cv2.imwrite(out, cv2.cvtColor(condition_storyboard(), cv2.COLOR_RGB2BGR))
    print(out)
