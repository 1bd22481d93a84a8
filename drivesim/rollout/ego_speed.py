"""The simulator's ego speed: integrated from the commanded accel with the world's own dynamics.

A prediction model with speed conditioning (`VideoUNetConfig.speed_conditioning`) is told
the ego speed of every keyframe. The engine keeps it in its state and advances it here with
`drivesim.world.ego.longitudinal_accel` (throttle fading towards max_speed, brakes, drag), in
the world's own time steps, so a held accel command changes the speed as it would have in
the data the model was trained on. The road surface is not known to the engine: on-road drag.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from drivesim.sampling.interpolation import blend_keyframes
from drivesim.world.config import WorldConfig
from drivesim.world.ego import longitudinal_accel

MAX_SPEED = WorldConfig().max_speed  # m/s, the world's default
DEFAULT_SPEED = WorldConfig().initial_speed  # m/s where nothing else says (no request speed, no reward head)


def advance_speed(
    speed: np.ndarray, accel: np.ndarray, num_frames: int, fps: float, max_speed: float = MAX_SPEED
) -> np.ndarray:
    """Speeds (b,) m/s after holding accel commands (b,) in [-1, 1] for `num_frames` source frames
    at `fps`; clamped to [0, max_speed] after every frame, as the world does."""
    speed = np.asarray(speed, np.float64)
    accel = np.asarray(accel, np.float64)
    if speed.shape != accel.shape or speed.ndim != 1:
        raise ValueError(f"speed {speed.shape} and accel {accel.shape} must both have shape (b,)")
    if num_frames < 0 or fps <= 0 or max_speed <= 0:
        raise ValueError(f"num_frames={num_frames} must be >= 0, fps={fps} and max_speed={max_speed} > 0")
    dt = 1.0 / fps
    out = speed.copy()
    for _ in range(num_frames):
        push = np.array([longitudinal_accel(float(a), float(v), max_speed, False) for a, v in zip(accel, out)])
        out = np.clip(out + push * dt, 0.0, max_speed)
    return out.astype(np.float32)


def speed_track(
    speed: np.ndarray, accel: np.ndarray, num_keyframes: int, stride: int, fps: float, max_speed: float = MAX_SPEED
) -> np.ndarray:
    """(b, num_keyframes) speeds at the next keyframes, `stride` source frames apart, with the
    accel (b,) held: column k is the speed after k + 1 keyframe intervals."""
    cols, v = [], np.asarray(speed, np.float32)
    for _ in range(num_keyframes):
        v = advance_speed(v, accel, stride, fps, max_speed)
        cols.append(v)
    return np.stack(cols, axis=1) if cols else np.zeros((len(v), 0), np.float32)


def window_speeds(context_speed: Tensor, actions: Tensor, num_new: int, stride: int, fps: float) -> Tensor:
    """(b, s + num_new) CPU ego speeds of a prediction window: the context keyframes' (b, s), then
    the speeds after each further keyframe interval of `stride` frames with the accel of
    `actions` (b, 2) held."""
    track = speed_track(context_speed[:, -1].cpu().numpy(), actions[:, 1].float().cpu().numpy(), num_new, stride, fps)
    return torch.cat([context_speed.float().cpu(), torch.from_numpy(track)], dim=1)


def between_keyframes(key_speeds: Tensor, factor: int) -> Tensor:
    """(b, k) speeds of keyframes `factor` frames apart -> (b, factor * (k - 1) + 1) speeds of every
    frame, linear in between (a held accel changes the speed almost linearly over a keyframe
    interval; the interpolation model's frames are told these)."""
    if key_speeds.ndim != 2 or key_speeds.shape[1] < 1 or factor < 1:
        raise ValueError(f"key_speeds has shape {tuple(key_speeds.shape)} and factor={factor}; expected (b, k>=1), >=1")
    return blend_keyframes(key_speeds.float(), factor)
