"""The learned env's reward terms, and their agreement with the procedural world's env."""

import numpy as np
import pytest

from drivesim.rollout.rewards import RewardConfig, compute_rewards, lane_position, reward_config
from drivesim.world.gym_env import ProceduralWorldEnv
from drivesim.world.types import Events


def test_lane_position_picks_the_nearest_lane_and_scores_centring():
    lane, centred = lane_position(np.array([-1.0, -0.75, 0.0, 0.3, 0.5, 1.2, 2.5]), num_lanes=3)
    assert lane.tolist() == [0, 0, 1, 1, 1, 2, 2]
    np.testing.assert_allclose(centred, [1.0, 0.5, 1.0, 0.4, 0.0, 0.6, 0.0])
    lane4, _ = lane_position(np.array([-1.5, -0.4, 0.4, 1.5]), num_lanes=4)  # centres -1.5, -0.5, 0.5, 1.5
    assert lane4.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("x_lanes", [-1.3, -1.0, -0.2, 0.0, 0.45, 1.0, 1.1])
def test_lane_terms_match_the_procedural_world_env(x_lanes):
    env = ProceduralWorldEnv(height=32, width=64)
    env.reset(seed=0)
    ego = env.world.ego_car
    ego.x = x_lanes * env.world.config.lane_width
    ego.heading = 0.0
    want = env._terms(Events())
    cfg = RewardConfig()
    got = compute_rewards(cfg, np.zeros(1), np.zeros(1), np.array([ego.speed]), np.array([[x_lanes, 0.0]]))
    for name in ("right_lane", "lane_centering", "on_road", "high_speed"):
        assert getattr(got, name)[0] == pytest.approx(want[name], abs=1e-5), name
    lo, hi = env._reward_bounds()
    assert got.total[0] == pytest.approx((sum(want.values()) - lo) / (hi - lo), abs=1e-5)


def test_without_a_pose_the_lane_terms_are_absent_and_out_of_the_normalisation():
    cfg = RewardConfig()
    col, off, speed = np.array([0.0, 1.0]), np.array([0.0, 0.0]), np.array([30.0, 10.0])
    r = compute_rewards(cfg, col, off, speed)
    assert r.right_lane is None and r.lane_centering is None
    assert set(r.as_dict(0)) == {"collision", "high_speed", "on_road"}
    np.testing.assert_allclose(r.total, [1.0, (-1.0 + 0.1 + 1.0) / 1.5], rtol=1e-6)  # lo -1, hi 0.5
    with_pose = compute_rewards(cfg, col, off, speed, np.array([[1.0, 0.0], [0.5, 0.0]]))
    assert set(with_pose.as_dict(1)) == {"collision", "high_speed", "on_road", "right_lane", "lane_centering"}
    np.testing.assert_allclose(with_pose.total[0], 1.0, rtol=1e-6)  # fast, right lane, centred: the maximum
    # off the road, the lane terms give nothing
    off_road = compute_rewards(cfg, np.zeros(1), np.ones(1), np.array([20.0]), np.array([[1.0, 0.0]]))
    assert off_road.right_lane[0] == 0 and off_road.lane_centering[0] == 0


def test_rewards_over_imagined_futures_keep_their_shape():
    k, h = 3, 4
    pose = np.zeros((k, h, 2))
    r = compute_rewards(RewardConfig(), np.zeros((k, h)), np.zeros((k, h)), np.full((k, h), 20.0), pose)
    assert r.total.shape == (k, h) and r.lane_centering.shape == (k, h)


def test_bad_reward_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown reward setting\(s\) \['lane_keeping'\]"):
        reward_config({"lane_keeping": 1.0})
    with pytest.raises(ValueError, match="num_lanes=0 must be >= 1"):
        reward_config({"num_lanes": 0})
    assert reward_config({"lane_centering_reward": 0.3}).lane_centering_reward == 0.3
