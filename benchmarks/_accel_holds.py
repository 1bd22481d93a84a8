"""Accel adherence in closed loop (`closed_loop.py --accel-holds`): the keeper steers, the accel is told.

Open-loop replays of a world driver's commands (`video_ldm_quality.py`, `action_pipeline.py`) let a rollout
drift off the road: the world's driver steered on the world's state, the rollout gets the same steer but
not the same state, and off the road there are no markings left to read motion from (docs/results.md,
session 34). Here every source (the world and each model) is steered by the lane keeper on its own pose
reading, as `closed_loop.py` does, while the accel follows random holds (`AccelHolds`: uniform in
±accel_max, `hold_s` each, turned back towards a speed band, seeded per start, so the world and the models
get the same holds where their speeds agree). `Recorder` keeps each source's frames and the action that led
to each, and `accel_report` reads them with the action probe: steer / accel r against what was commanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _action_reading import read_actions

from drivesim.eval.probe_io import load_probes

ACCEL_SEED_BASE = 9_000_000  # AccelHolds of start i: seed ACCEL_SEED_BASE + i


@dataclass(frozen=True)
class HoldConfig:
    """Accel holds as `PatternDriver` makes them: magnitude, hold length (s), speed band (m/s)."""

    accel_max: float = 0.8
    hold_s: float = 1.6
    speed_band: tuple[float, float] = (10.0, 34.0)

    def __post_init__(self) -> None:
        lo, hi = self.speed_band
        if not (0.0 < self.accel_max <= 1.0 and self.hold_s > 0.0 and 0.0 <= lo < hi):
            raise ValueError(f"HoldConfig({self}): need 0 < accel_max <= 1, hold_s > 0 s, 0 <= band lo < hi (m/s)")


class AccelHolds:
    """`act(speed (b,), dt) -> (b,)` accel: a new uniform draw in ±accel_max every hold_s seconds per rollout,
    its sign turned towards the band when the speed is outside it; rollout i seeded `seeds[i]`."""

    def __init__(self, seeds: list[int], config: HoldConfig | None = None) -> None:
        self.config = config or HoldConfig()
        self._rngs = [np.random.default_rng(s) for s in seeds]
        self._accel = np.zeros(len(seeds), np.float32)
        self._left = np.zeros(len(seeds))

    def act(self, speed: np.ndarray, dt: float) -> np.ndarray:
        c, lo, hi = self.config, *self.config.speed_band
        for i, rng in enumerate(self._rngs):
            if self._left[i] <= 1e-9:
                a = float(rng.uniform(-c.accel_max, c.accel_max))
                if (speed[i] < lo and a < 0.0) or (speed[i] > hi and a > 0.0):
                    a = -a
                self._accel[i], self._left[i] = a, c.hold_s
            self._left[i] -= dt
        return self._accel.copy()


class Recorder:
    """Per source, the frames (b, t, h, w, 3) uint8 and the action (b, t, 2) that led to each."""

    def __init__(self) -> None:
        self.frames: dict[str, list[np.ndarray]] = {}
        self.actions: dict[str, list[np.ndarray]] = {}

    def add(self, source: str, frames: np.ndarray, action: np.ndarray) -> None:
        """frames (b, k, h, w, 3) made by holding action (b, 2) over them."""
        self.frames.setdefault(source, []).append(frames)
        self.actions.setdefault(source, []).append(np.repeat(action[:, None].astype(np.float32), frames.shape[1], 1))

    def arrays(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.frames[source], axis=1), np.concatenate(self.actions[source], axis=1)


def accel_report(recorder: Recorder, sources: list[str], starts: int, probes_dir: str, hop: int) -> dict:
    """Per source, the action probe's steer / accel adherence over every start's frames (`ActionReading.report`);
    "world" is recorded one start at a time (as "world i"), a model's starts together."""
    probes = load_probes(Path(probes_dir), "cpu")
    report = {}
    for name in sources:
        if name == "world":
            parts = [recorder.arrays(f"world {i}") for i in range(starts)]
            frames, actions = (np.concatenate(x, axis=0) for x in zip(*parts))
        else:
            frames, actions = recorder.arrays(name)
        report[name] = read_actions(probes, frames, actions, hop).report(len(frames))
    return report
