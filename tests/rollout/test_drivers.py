"""Scripted closed-loop drivers: lane changes on schedule, braking, and their errors."""

import numpy as np
import pytest

from drivesim.rollout.drivers import DRIVERS, ScriptedDriver, first_change
from drivesim.rollout.types import StepOutput

SPS = 7.5  # control steps per second (30 fps, keyframes 4 frames apart)


def reading(offset: float, speed: float = 25.0, pose: bool = True) -> StepOutput:
    """A StepOutput carrying only what a driver reads: pose (1, 2) and speed (1,)."""
    z = np.zeros(1, np.float32)
    p = np.array([[offset, 0.0]], np.float32) if pose else None
    return StepOutput(None, None, None, z, z, np.array([speed], np.float32), pose=p)


def test_first_change_goes_towards_the_middle_or_left():
    assert first_change(np.array([0, 1, 2]), 3).tolist() == [1, -1, -1]


def test_lane_change_brake_script_moves_the_target_lane_and_overrides_accel():
    driver = ScriptedDriver("keeper_lane_change_brake", SPS)
    centre = 0.0  # the middle of three lanes
    targets, accels, steers = [], [], []
    for k in range(int(20 * SPS)):
        action = driver.act(reading(centre), k)
        targets.append(int(driver.keeper.target_lane[0]))
        steers.append(float(action[0, 0]))
        accels.append(float(action[0, 1]))
    t = np.arange(len(targets)) / SPS
    targets, accels, steers = np.array(targets), np.array(accels), np.array(steers)
    assert (targets[t < 4] == 1).all() and (targets[(t >= 4) & (t < 10)] == 0).all() and (targets[t >= 10] == 1).all()
    assert driver.lane_changes == 2
    assert steers[np.argmax(t >= 4)] < 0  # the new target lane is to the left: steer left
    assert (accels[(t >= 14) & (t < 15.5)] == -1).all() and (accels[(t >= 15.5) & (t < 18)] == 1).all()
    assert (np.abs(accels[t < 14]) < 1).all()  # the keeper holds speed elsewhere


def test_keeper_keeps_its_lane():
    driver = ScriptedDriver("keeper", SPS)
    for k in range(int(30 * SPS)):
        driver.act(reading(0.9), k)
    assert driver.keeper.target_lane.tolist() == [2] and driver.lane_changes == 0


def test_errors_name_what_is_allowed():
    with pytest.raises(ValueError, match="keeper_lane_change_brake"):
        ScriptedDriver("teleport", SPS)
    with pytest.raises(ValueError, match="steps_per_second"):
        ScriptedDriver("keeper", 0.0)
    with pytest.raises(ValueError, match="no pose output"):
        ScriptedDriver("keeper", SPS).act(reading(0.0, pose=False), 0)
    assert set(DRIVERS) == {"keeper", "keeper_lane_change_brake"}
