from __future__ import annotations

import numpy as np
import pytest

from drivesim.world import World, WorldConfig
from drivesim.world.pattern_driver import PatternDriver, PatternDriverConfig


def _drive(seed: int, seconds: float, config: PatternDriverConfig | None = None, fps: int = 30):
    world = World(WorldConfig(height=32, width=64, fps=fps))
    world.reset(seed=seed, time_of_day="day", crowdedness="low")
    driver = PatternDriver(seed, config)
    frames = [world.step(driver.act(world)) for _ in range(round(seconds * fps))]
    return world, frames


def test_weaves_and_holds_accel_on_the_road_within_the_speed_band():
    for seed in (0, 1, 2):
        _, frames = _drive(seed, 6.4)
        actions = np.stack([f.action for f in frames])
        accel = actions[:, 1]
        # held: accel changes only at hold boundaries (every 48 frames at 1.6 s, 30 fps)
        changes = np.flatnonzero(np.diff(accel) != 0) + 1
        assert set(changes.tolist()) <= {48, 96, 144}
        assert np.all(np.abs(accel) <= 0.8)
        lateral = np.array([f.ego.lateral_offset for f in frames])
        assert lateral.max() - lateral.min() > 0.3  # it weaves (lane widths)
        assert not any(f.events.off_road for f in frames)
        speed = np.array([f.ego.speed for f in frames])
        assert speed.min() > 8.0 and speed.max() < 36.0


def test_accel_drawn_independently_of_the_speed_and_deterministic():
    a = np.stack([f.action for f in _drive(5, 6.4)[1]])
    b = np.stack([f.action for f in _drive(5, 6.4)[1]])
    assert np.array_equal(a, b)
    holds = np.concatenate([np.stack([f.action for f in _drive(s, 6.4)[1]])[::48, 1] for s in range(8)])
    assert (holds > 0.1).any() and (holds < -0.1).any()  # throttle and brake both commanded


def test_speed_band_flips_a_hold_that_would_leave_it():
    # a band above the start speed: every hold must be positive (throttle) until the band is reached
    _, frames = _drive(3, 3.2, PatternDriverConfig(speed_band=(34.0, 40.0)))
    assert all(f.action[1] >= 0 for f in frames)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weave_lanes": 1.5},
        {"weave_period_s": (0.0, 1.0)},
        {"accel_max": 1.2},
        {"hold_s": (2.0, 1.0)},
        {"speed_band": (20.0, 10.0)},
    ],
)
def test_bad_config_is_refused_with_the_field_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PatternDriverConfig(**kwargs)
