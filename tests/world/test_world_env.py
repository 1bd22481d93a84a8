from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import drivesim  # noqa: F401  (registers the env ids)
from drivesim.world import Boxes, EgoState, Events
from drivesim.world.gym_env import ProceduralWorldEnv


def test_registered_env_passes_check_env():
    env = gymnasium.make("drivesim/ProceduralWorld-v0")
    check_env(env.unwrapped, skip_render_check=False)
    assert env.observation_space.shape == (64, 128, 3) and env.observation_space.dtype == np.uint8
    assert env.action_space.shape == (2,) and env.action_space.dtype == np.float32
    env.close()


def test_reset_options_and_info():
    env = ProceduralWorldEnv(height=64, width=128)
    obs, info = env.reset(seed=3, options={"time_of_day": "night", "crowdedness": "high"})
    assert obs.shape == (64, 128, 3) and obs.dtype == np.uint8
    assert info["time_of_day"] == "night" and info["crowdedness"] == "high"
    assert isinstance(info["boxes"], Boxes) and isinstance(info["ego"], EgoState)
    assert isinstance(info["events"], Events)
    obs2, reward, terminated, truncated, info = env.step(np.array([0.0, 0.2], np.float32))
    assert set(info["rewards"]) == {"collision", "high_speed", "right_lane", "lane_centering", "on_road"}
    assert 0.0 <= reward <= 1.0 and not truncated
    sampled = {env.reset(seed=s)[1]["time_of_day"] for s in range(12)}
    assert sampled == {"day", "night"}


def test_reset_is_deterministic_for_a_seed():
    env = ProceduralWorldEnv()
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    assert np.array_equal(a, b)


def test_option_errors():
    env = ProceduralWorldEnv()
    with pytest.raises(ValueError, match="allowed keys"):
        env.reset(options={"weather": "rain"})
    with pytest.raises(ValueError, match=r"initial_frames'\] is only supported by the learned env"):
        env.reset(options={"initial_frames": np.zeros((1, 64, 128, 3), np.uint8)})
    with pytest.raises(ValueError, match="time_of_day"):
        env.reset(options={"time_of_day": "dawn"})
    with pytest.raises(ValueError, match="boxes"):
        env.reset(options={"boxes": [[0.2, 0.2, 0.1, 0.3]]})
    with pytest.raises(ValueError, match="unknown reward"):
        ProceduralWorldEnv(reward={"speeding": 1.0})


def test_boxes_option_places_vehicles_and_collision_terminates():
    env = ProceduralWorldEnv(frame_skip=2)
    _, info = env.reset(seed=0, options={"boxes": [[0.35, 0.5, 0.65, 0.85]], "crowdedness": "low"})
    assert len(info["boxes"]) == 1
    terminated, steps = False, 0
    while not terminated and steps < 100:
        _, reward, terminated, _, info = env.step(np.array([0.0, 1.0], np.float32))
        steps += 1
    assert terminated and info["events"].collision
    assert info["rewards"]["collision"] < 0.0
    assert env.unwrapped.world.frame_index == 2 * steps
