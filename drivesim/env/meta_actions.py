"""Discrete meta-actions (as in highway-env) mapped onto [steer, accel]."""

from __future__ import annotations

import reprlib

import numpy as np

META_ACTIONS: tuple[str, ...] = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")

_TABLE = np.array(
    [
        [-0.6, 0.0],  # LANE_LEFT
        [0.0, 0.0],  # IDLE
        [0.6, 0.0],  # LANE_RIGHT
        [0.0, 0.7],  # FASTER
        [0.0, -0.7],  # SLOWER
    ],
    dtype=np.float32,
)


def meta_to_continuous(action: object, num_envs: int | None = None) -> np.ndarray:
    """Index/indices into META_ACTIONS -> (2,) or (num_envs, 2) float32 [steer, accel].

    Only integers are accepted: a float (2.7, even 3.0), a bool or a string is rejected
    rather than truncated to an index.
    """
    allowed = f"0..{len(META_ACTIONS) - 1} = {META_ACTIONS}"
    shape = () if num_envs is None else (num_envs,)
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError):
        shown = reprlib.repr(action)
        raise ValueError(f"discrete action={shown} is not allowed; expected integer indices {allowed}") from None
    if arr.shape != shape or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"discrete action must be an integer array of shape {shape} with indices {allowed}, "
            f"got {arr.dtype} {arr.shape} ({reprlib.repr(action)})"
        )
    if np.any(arr < 0) or np.any(arr >= len(META_ACTIONS)):
        raise ValueError(f"discrete action {arr.tolist()} out of range; allowed {allowed}")
    return _TABLE[arr]
