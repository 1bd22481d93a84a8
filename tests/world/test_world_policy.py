from __future__ import annotations

import numpy as np
import pytest

from drivesim.world import BehaviourPolicy, World, WorldConfig
from tests.world.helpers import rollout


def test_policy_actions_are_valid_deterministic_and_varied():
    _, frames = rollout(seed=12, steps=450, crowdedness="medium")
    actions = np.stack([f.action for f in frames[1:]])
    _, again = rollout(seed=12, steps=450, crowdedness="medium")
    assert actions.dtype == np.float32 and actions.shape == (450, 2)
    assert np.array_equal(actions, np.stack([f.action for f in again[1:]]))
    assert np.all(np.abs(actions) <= 1.0)
    assert actions[:, 0].std() > 0.05 and actions[:, 1].std() > 0.25  # steer and accel both vary
    assert np.abs(actions[:, 0]).max() > 0.5  # swerves: strong steering is in the data
    assert actions[:, 1].min() < -0.3 and actions[:, 1].max() > 0.3  # brakes and accelerates
    assert np.abs(np.diff(actions, axis=0)).mean() < 0.08  # smooth


def test_policy_changes_lanes_and_stays_on_the_road():
    _, frames = rollout(seed=13, steps=1200, crowdedness="low")
    lateral = np.array([f.ego.lateral_offset for f in frames])
    assert lateral.max() - lateral.min() > 0.8  # at least one lane change
    assert np.mean([f.events.off_road for f in frames]) < 0.05


def _policy_actions(seed: int, steps: int, explore: float) -> np.ndarray:
    world = World(WorldConfig(height=32, width=64))
    world.reset(seed=seed, time_of_day="day", crowdedness="low")
    policy = BehaviourPolicy(seed, explore=explore)
    return np.stack([world.step(policy.act(world)).action for _ in range(steps)])


def _interval_means(actions: np.ndarray, stride: int) -> np.ndarray:
    n = len(actions) // stride
    return actions[: n * stride].reshape(n, stride, 2).mean(axis=1)


def test_exploration_segments_give_actions_the_past_does_not_explain():
    calm = _interval_means(_policy_actions(21, 900, explore=0.0), 16)
    wild = _interval_means(_policy_actions(21, 900, explore=0.6), 16)
    assert np.array_equal(_policy_actions(21, 60, 0.0), _policy_actions(21, 60, 0.0))
    assert np.array_equal(_policy_actions(21, 60, 0.6), _policy_actions(21, 60, 0.6))  # still deterministic

    def unexplained(m: np.ndarray) -> float:  # steer residual of a line on the previous interval
        x, y = np.c_[m[:-1, 0], np.ones(len(m) - 1)], m[1:, 0]
        w, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float((y - x @ w).std())

    assert unexplained(wild) > 1.5 * unexplained(calm)
    assert np.abs(wild[:, 0]).max() > 0.4 and wild[:, 1].min() < -0.3 and wild[:, 1].max() > 0.3


def test_explore_must_be_a_probability():
    with pytest.raises(ValueError, match=r"explore=1.5 .* \[0, 1\]"):
        BehaviourPolicy(0, explore=1.5)
