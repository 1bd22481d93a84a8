from __future__ import annotations

import numpy as np

from drivesim.world import World, WorldConfig
from drivesim.world.ego import EgoCar
from tests.world.helpers import drive


def _world(seed: int = 4) -> World:
    world = World(WorldConfig(height=64, width=128))
    world.reset(seed=seed, time_of_day="day", crowdedness="low")
    return world


def test_steering_moves_the_ego_laterally_and_shifts_the_view():
    left, right = _world(), _world()
    start = left.ego_state.lateral_offset
    frame_left = drive(left, (-0.4, 0.0), 20)
    frame_right = drive(right, (0.4, 0.0), 20)
    assert frame_left.ego.lateral_offset < start < frame_right.ego.lateral_offset
    assert frame_left.ego.heading < 0.0 < frame_right.ego.heading
    diff = np.abs(frame_left.image.astype(int) - frame_right.image.astype(int)).mean()
    assert diff > 10.0


def _ground_flow(world: World, action: tuple[float, float], steps: int) -> float:
    """Mean absolute change between consecutive frames in the road rows."""
    prev = world.render().image
    total = 0.0
    for _ in range(steps):
        img = world.step(np.array(action, np.float32)).image
        total += np.abs(img[40:56].astype(int) - prev[40:56].astype(int)).mean()
        prev = img
    return total / steps


def test_speed_changes_how_fast_the_road_flows():
    fast, slow = _world(seed=8), _world(seed=8)
    drive(fast, (0.0, 1.0), 90)
    drive(slow, (0.0, -1.0), 90)
    assert fast.ego_state.speed > slow.ego_state.speed + 25.0
    assert _ground_flow(fast, (0.0, 0.3), 20) > 1.5 * _ground_flow(slow, (0.0, 0.0), 20)


def test_braking_stops_the_car_and_throttle_is_bounded():
    world = _world()
    drive(world, (0.0, -1.0), 150)
    assert world.ego_state.speed == 0.0
    drive(world, (0.0, 1.0), 90)
    assert 5.0 < world.ego_state.speed
    ego = EgoCar(speed=39.9)
    for _ in range(100):
        ego.step(0.0, 1.0, 0.0, 1 / 30, 40.0, off_road=False)
    assert 35.0 < ego.speed <= 40.0


def test_out_of_range_actions_are_clipped():
    world = _world()
    frame = world.step(np.array([5.0, -3.0], np.float32))
    assert np.array_equal(frame.action, np.array([1.0, -1.0], np.float32))


def test_leaving_the_road_is_an_event():
    world = _world()
    off = False
    for _ in range(120):
        off |= world.step(np.array([1.0, 0.0], np.float32)).events.off_road
    assert off
    assert abs(world.ego_state.lateral_offset) * world.config.lane_width > world.config.half_road


def test_collision_is_an_event_and_the_world_keeps_running():
    world = World(WorldConfig(height=64, width=128))
    world.reset(seed=0, crowdedness="low", boxes=np.array([[0.35, 0.5, 0.65, 0.85]]))
    assert len(world.traffic) == 1
    events = [world.step(np.array([0.0, 1.0], np.float32)).events.collision for _ in range(150)]
    assert any(events)
    speed_after = world.ego_state.speed
    frame = world.step(np.array([0.0, 0.0], np.float32))
    assert frame.frame_index == 151 and speed_after < world.config.max_speed
