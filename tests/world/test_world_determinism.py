from __future__ import annotations

import numpy as np

from tests.world.helpers import rollout


def test_same_seed_gives_identical_frames_and_boxes():
    _, a = rollout(seed=11, steps=40, crowdedness="high")
    _, b = rollout(seed=11, steps=40, crowdedness="high")
    for fa, fb in zip(a, b):
        assert np.array_equal(fa.image, fb.image)
        assert fa.boxes == fb.boxes
        assert fa.ego == fb.ego and fa.events == fb.events
        assert np.array_equal(fa.action, fb.action)


def test_different_seeds_differ():
    _, a = rollout(seed=1, steps=5)
    _, b = rollout(seed=2, steps=5)
    assert not np.array_equal(a[-1].image, b[-1].image)


def test_rendering_other_sizes_does_not_change_the_state():
    world_a, frames_a = rollout(seed=5, steps=10)
    from drivesim.world import BehaviourPolicy, World, WorldConfig

    world_b = World(WorldConfig(height=64, width=128))
    world_b.reset(seed=5, time_of_day="day", crowdedness="medium")
    policy = BehaviourPolicy(5)
    for frame_a in frames_a[1:]:
        world_b.render(96, 192)
        frame_b = world_b.step(policy.act(world_b))
        world_b.render(256, 512)
        assert np.array_equal(frame_a.image, frame_b.image)
    assert world_a.ego_state == world_b.ego_state
