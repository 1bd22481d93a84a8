"""The closed-loop lane keeper, checked on the procedural world's true pose."""

import numpy as np
import pytest

from drivesim.rollout.lane_keeper import LaneKeeper, LaneKeeperConfig
from drivesim.world.config import WorldConfig
from drivesim.world.world import World


def _drive(every: int, seconds: float, change_at: float | None, start_offset_m: float, heading_from: str):
    """Drive the world with the keeper acting every `every` frames (the action held in between) on
    the true pose; returns the lateral error to the target lane (lane widths) per frame, off-road frames."""
    world = World(WorldConfig(height=32, width=64))
    world.reset(seed=3, crowdedness="low")
    cfg, ego = world.config, world.ego_car
    ego.x += start_offset_m
    keeper = LaneKeeper(LaneKeeperConfig(heading_from=heading_from))
    action, errors, off_road, dt = np.zeros(2, np.float32), [], 0, every / cfg.fps
    change = None if change_at is None else int(change_at * cfg.fps) // every * every  # a control step
    for f in range(int(seconds * cfg.fps)):
        if f % every == 0:
            if f == change:
                keeper.change_lane(1 if keeper.target_lane[0] == 0 else -1)  # towards the middle
            pose = np.array([ego.x / cfg.lane_width]), np.array([ego.heading])
            action = keeper.act(*pose, np.array([ego.speed]), dt)[0]
        off_road += world.advance(action).off_road
        errors.append(ego.x / cfg.lane_width - keeper.lane_centre(keeper.target_lane)[0])
    return np.abs(np.array(errors)), off_road, keeper


@pytest.mark.parametrize("heading_from", ["offset_rate", "read"])
@pytest.mark.parametrize("every", [4, 16])  # the stride-4 model's and the bundle's control intervals
def test_it_centres_the_car_and_changes_lane_on_command(every, heading_from):
    fps = WorldConfig().fps
    errors, off_road, keeper = _drive(every, 30.0, change_at=15.0, start_offset_m=1.2, heading_from=heading_from)
    limit = 0.2 if every == 4 else 0.4  # lane widths; 0.5 is the lane's edge
    assert off_road == 0
    assert errors[int(9 * fps) : int(14.5 * fps)].max() < limit  # in its lane before the change
    assert errors[int(15 * fps)] > 0.8  # the new target is a lane away (the change falls in 14.5-15 s) ...
    assert errors[int(22 * fps) :].max() < limit  # ... and reached within 7 s


def test_without_it_the_same_start_drifts():
    world = World(WorldConfig(height=32, width=64))
    world.reset(seed=3, crowdedness="low")
    world.ego_car.x += 1.2
    world.ego_car.heading = 0.03
    off = sum(world.advance(np.array([0.0, 0.0], np.float32)).off_road for _ in range(30 * 15))
    assert off > 0  # held straight, the car leaves the road: the keeper's test is not trivial


def test_targets_stay_on_the_road_and_bad_input_is_refused():
    keeper = LaneKeeper(LaneKeeperConfig(num_lanes=3))
    with pytest.raises(ValueError, match="call act\\(\\) once first"):
        keeper.change_lane(1)
    out = keeper.act(np.array([-1.1, 0.9]), np.zeros(2), np.full(2, 25.0), 0.5)
    assert out.shape == (2, 2) and out.dtype == np.float32 and np.all(np.abs(out) <= 1)
    assert keeper.target_lane.tolist() == [0, 2]
    keeper.change_lane(np.array([-1, 1]))
    assert keeper.target_lane.tolist() == [0, 2]  # already at the edges
    assert keeper.act(np.array([0.0]), np.zeros(1), np.array([10.0]), 0.5)[0, 1] == 1.0  # slow: full accel
    with pytest.raises(ValueError, match="must be finite"):
        keeper.act(np.array([np.nan]), np.zeros(1), np.ones(1), 0.5)
    with pytest.raises(ValueError, match="one length"):
        keeper.act(np.zeros(2), np.zeros(1), np.ones(2), 0.5)
    with pytest.raises(ValueError, match="dt=0 must be > 0"):
        keeper.act(np.zeros(1), np.zeros(1), np.ones(1), 0)
    with pytest.raises(ValueError, match="num_lanes >= 1"):
        LaneKeeperConfig(num_lanes=0)
    with pytest.raises(ValueError, match=r"heading_from='gps'; allowed: \['offset_rate', 'read'\]"):
        LaneKeeperConfig(heading_from="gps")


def test_the_offset_rate_stands_in_for_a_wrong_heading_reading():
    """Moving right at 0.1 rad while a (wrong) heading of -0.1 is read: by default the keeper steers
    left from the offset's rate; with heading_from="read" it believes the reading and steers right."""
    speed, dt = np.array([25.0]), 0.5
    moved = 25.0 * np.sin(0.1) * dt / 3.5  # lane widths in dt at 0.1 rad
    steers = {}
    for source in ("offset_rate", "read"):
        keeper = LaneKeeper(LaneKeeperConfig(heading_from=source))
        keeper.act(np.array([0.0]), np.array([-0.1]), speed, dt)
        steers[source] = keeper.act(np.array([moved]), np.array([-0.1]), speed, dt)[0, 0]
    assert steers["offset_rate"] < -0.5 and steers["read"] > 0.1
