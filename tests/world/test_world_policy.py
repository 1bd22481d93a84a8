from __future__ import annotations

import numpy as np

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
