"""Validation of env actions and reset options, with errors that name the field and what is allowed.

Documented behaviour: continuous actions outside [-1, 1] are clipped (any finite real
number, however large); actions of the wrong shape, with NaN/inf or of a non-real dtype
(strings, complex, bool, objects) are rejected; options must be a mapping, and unknown
option keys or values are rejected.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from drivesim.rollout.types import SceneRequest
from drivesim.world.numeric import real_array

TIME_OF_DAY = ("day", "night")
CROWDEDNESS = ("low", "medium", "high")
OPTION_KEYS = ("time_of_day", "crowdedness", "boxes", "initial_frames")
MAX_BOXES = 16


def check_action(action: Any, num_envs: int | None = None) -> np.ndarray:
    """(2,) or (num_envs, 2) float32 [steer, accel], clipped to [-1, 1]."""
    shape = (2,) if num_envs is None else (num_envs, 2)
    arr = real_array(action, "action", f"numeric [steer, accel] of shape {shape}")
    if arr.shape != shape:
        raise ValueError(f"action must have shape {shape} ([steer, accel] in [-1, 1]), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action must be finite (no NaN/inf), got {arr.tolist()}")
    return np.clip(arr, -1.0, 1.0).astype(np.float32)


def check_boxes(boxes: Any) -> np.ndarray:
    """(n, 4) float32 normalised [x1, y1, x2, y2] with 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1."""
    arr = real_array(boxes, "options['boxes']", "a list of [x1, y1, x2, y2] numbers in [0, 1]")
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"options['boxes'] must have shape (n, 4) = [[x1, y1, x2, y2], ...], got shape {arr.shape}")
    if arr.shape[0] > MAX_BOXES:
        raise ValueError(f"options['boxes'] has {arr.shape[0]} boxes; at most {MAX_BOXES} are allowed")
    if not np.all(np.isfinite(arr)):
        raise ValueError("options['boxes'] must be finite (no NaN/inf)")
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(
            f"options['boxes'] coordinates must be normalised to [0, 1], got values in [{arr.min():g}, {arr.max():g}]"
        )
    bad = np.nonzero((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1]))[0]
    if bad.size:
        raise ValueError(f"options['boxes'][{int(bad[0])}] = {arr[bad[0]].tolist()} needs x1 < x2 and y1 < y2")
    return arr.astype(np.float32)


def check_initial_frames(frames: Any, height: int, width: int) -> np.ndarray:
    """(k, h, w, 3) uint8 (a single (h, w, 3) frame is accepted as k=1); k in 1..2."""
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"options['initial_frames'] must be a numpy uint8 array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"options['initial_frames'] must have dtype uint8, got {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[1:] != (height, width, 3) or not 1 <= frames.shape[0] <= 2:
        raise ValueError(
            f"options['initial_frames'] must have shape (k, {height}, {width}, 3) with k in 1..2 "
            f"(or ({height}, {width}, 3)), got {frames.shape}"
        )
    return frames


def parse_options(
    options: dict[str, Any] | None, seed: int, rng: np.random.Generator, height: int, width: int
) -> SceneRequest:
    """Validated SceneRequest; omitted labels are sampled uniformly (the data's balanced distribution)."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ValueError(f"options must be a dict with keys {list(OPTION_KEYS)} or None, got {type(options).__name__}")
    unknown = sorted((k for k in options if k not in OPTION_KEYS), key=repr)
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed keys: {list(OPTION_KEYS)}")
    tod = options.get("time_of_day")
    crowd = options.get("crowdedness")
    if tod is None:
        tod = TIME_OF_DAY[int(rng.integers(len(TIME_OF_DAY)))]
    if crowd is None:
        crowd = CROWDEDNESS[int(rng.integers(len(CROWDEDNESS)))]
    if not isinstance(tod, str) or tod not in TIME_OF_DAY:
        shown = reprlib.repr(tod)
        raise ValueError(f"options['time_of_day']={shown} is not allowed; expected one of {list(TIME_OF_DAY)}")
    if not isinstance(crowd, str) or crowd not in CROWDEDNESS:
        shown = reprlib.repr(crowd)
        raise ValueError(f"options['crowdedness']={shown} is not allowed; expected one of {list(CROWDEDNESS)}")
    boxes = options.get("boxes")
    frames = options.get("initial_frames")
    return SceneRequest(
        time_of_day=TIME_OF_DAY.index(tod),
        crowdedness=CROWDEDNESS.index(crowd),
        seed=int(seed),
        boxes=None if boxes is None else check_boxes(boxes),
        initial_frames=None if frames is None else check_initial_frames(frames, height, width),
    )
