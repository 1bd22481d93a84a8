"""Scripted action sources for scenario generation: (step) -> [steer, accel]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

POLICIES: tuple[str, ...] = ("idle", "weave", "random", "lane_change_brake")


def policy_actions(name: str, num_steps: int, seed: int, steps_per_second: float) -> np.ndarray:
    """(num_steps, 2) float32 actions of a named scripted policy."""
    if name not in POLICIES:
        raise ValueError(f"policy={name!r} is not allowed; expected one of {list(POLICIES)}")
    t = np.arange(num_steps) / steps_per_second
    out = np.zeros((num_steps, 2), np.float32)
    if name == "weave":
        out[:, 0] = 0.5 * np.sin(2 * np.pi * t / 6.0)
        out[:, 1] = 0.2
    elif name == "random":
        rng = np.random.default_rng(seed)
        hold = max(1, int(round(steps_per_second)))
        knots = rng.uniform(-1, 1, size=(num_steps // hold + 1, 2)) * np.array([0.6, 0.8])
        out[:] = np.repeat(knots, hold, axis=0)[:num_steps]
    elif name == "lane_change_brake":
        phase = t % 20.0
        out[(phase >= 4) & (phase < 5), 0] = -0.6
        out[(phase >= 10) & (phase < 11), 0] = 0.6
        out[(phase >= 14) & (phase < 15.5), 1] = -1.0
        out[(phase >= 15.5) & (phase < 18), 1] = 1.0
    return out


def load_actions(path: str | Path, num_steps: int) -> np.ndarray:
    """Actions from a .npy or .json file of shape (n, 2); repeated cyclically to num_steps."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"actions file {path} does not exist")
    if path.suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif path.suffix == ".json":
        import json

        arr = np.asarray(json.loads(path.read_text()), dtype=np.float64)
    else:
        raise ValueError(f"actions file {path}: expected .npy or .json, got {path.suffix!r}")
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        raise ValueError(f"actions file {path}: expected shape (n, 2) [steer, accel], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"actions file {path}: contains NaN or inf")
    arr = np.clip(arr.astype(np.float32), -1, 1)
    return np.resize(arr, (num_steps, 2))
