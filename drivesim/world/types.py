"""Value types of the procedural world: labels, boxes, ego state, events, one frame.

These are the contract between the world (`drivesim.world`), the dataset format
(`drivesim.data`) and everything that consumes ground truth. Arrays are numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TIME_OF_DAY: tuple[str, ...] = ("day", "night")
CROWDEDNESS: tuple[str, ...] = ("low", "medium", "high")
VEHICLE_CLASSES: tuple[str, ...] = ("car", "truck")


def check_label(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Return `value` if it is one of `allowed`, else raise a ValueError naming both."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)}")
    return value


@dataclass(frozen=True)
class Boxes:
    """Vehicle boxes of one frame, sorted far-to-near (drawing order).

    xyxy: (n, 4) float32 pixel coordinates x1, y1, x2, y2 (clipped to the image).
    classes: (n,) int64 indices into VEHICLE_CLASSES.
    track_ids: (n,) int64 ids that persist while a vehicle exists.
    image_size: (height, width) the pixel coordinates refer to.
    """

    xyxy: np.ndarray
    classes: np.ndarray
    track_ids: np.ndarray
    image_size: tuple[int, int]

    @property
    def normalized(self) -> np.ndarray:
        """(n, 4) float32 boxes divided by (w, h, w, h): in [0, 1]."""
        h, w = self.image_size
        return (self.xyxy / np.array([w, h, w, h], dtype=np.float32)).astype(np.float32)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __eq__(self, other: object) -> bool:
        """Element-wise equality of all fields (numpy fields compared with array_equal)."""
        if not isinstance(other, Boxes):
            return NotImplemented
        return (tuple(self.image_size) == tuple(other.image_size) and np.array_equal(self.xyxy, other.xyxy)
                and np.array_equal(self.classes, other.classes) and np.array_equal(self.track_ids, other.track_ids))

    @staticmethod
    def empty(image_size: tuple[int, int]) -> Boxes:
        return Boxes(
            xyxy=np.zeros((0, 4), np.float32),
            classes=np.zeros((0,), np.int64),
            track_ids=np.zeros((0,), np.int64),
            image_size=image_size,
        )


@dataclass(frozen=True)
class EgoState:
    """speed in m/s (>= 0); lateral offset in lane widths from the road centre
    (negative = left); heading in radians relative to the road direction."""

    speed: float
    lateral_offset: float
    heading: float


@dataclass(frozen=True)
class Events:
    collision: bool = False
    off_road: bool = False


@dataclass(frozen=True)
class WorldFrame:
    """One rendered frame of the world and its ground truth.

    image: (h, w, 3) uint8 RGB.
    action: (2,) float32 [steer, accel] that led to this frame (zeros after reset).
    """

    image: np.ndarray
    boxes: Boxes
    ego: EgoState
    events: Events
    action: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    time_of_day: str = "day"
    crowdedness: str = "medium"
    frame_index: int = 0
