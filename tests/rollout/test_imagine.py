"""imagine_futures over a network-free engine: forks, returns and the caller's state."""

import numpy as np
import pytest
import torch

from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.imagine import fork, imagine_futures
from drivesim.rollout.rewards import RewardConfig, compute_rewards
from drivesim.rollout.types import SceneRequest
from tests.env.scripted_engine import ScriptedEngine


@pytest.fixture
def engine():
    e = ScriptedEngine()
    e.config = EngineConfig(reward_discount=0.5)
    return e


def test_fork_gives_each_copy_its_own_generator_and_is_reproducible(engine):
    state = engine.start([SceneRequest(0, 1, seed=4)]).state
    a, b = fork(state, 3), fork(state, 3)
    assert a.batch_size == 3 and torch.equal(a.rng, b.rng)
    assert not torch.equal(a.rng[0], a.rng[1]) and not torch.equal(a.rng[0], state.rng[0])


def test_returns_are_discounted_sums_and_state_is_untouched(engine):
    state = engine.start([SceneRequest(0, 1, seed=2)]).state
    before = state.clone()
    actions = np.zeros((2, 3, 2), np.float32)
    actions[1, :, 1] = -1.0  # full braking: the scripted engine reports a collision every step
    reward = RewardConfig(normalize=False)
    out = imagine_futures(engine, state, actions, reward)
    assert out.frames.shape == (2, 3, 4, 16, 32, 3) and out.collision.shape == (2, 3)
    assert out.collision[1].all() and not out.collision[0].any()
    terms = compute_rewards(reward, out.collision, out.off_road, out.speed)
    np.testing.assert_allclose(out.returns, (terms.total * 0.5 ** np.arange(3)).sum(1), rtol=1e-6)
    assert out.returns[1] < out.returns[0]
    assert torch.equal(state.rng, before.rng) and torch.equal(state.context, before.context)
    assert not np.array_equal(out.frames[0, 0], out.frames[1, 0])  # forks draw different noise


def test_without_decoding_frames_are_empty(engine):
    state = engine.start([SceneRequest(1, 0, seed=0)]).state
    out = imagine_futures(engine, state, np.zeros((2, 2, 2), np.float32), RewardConfig(), decode=False)
    assert out.frames.shape == (2, 2, 0) and out.latents.shape[:2] == (2, 2)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 3)])
def test_bad_action_shapes_are_refused(engine, shape):
    state = engine.start([SceneRequest(0, 0, seed=0)]).state
    with pytest.raises(ValueError, match=r"\(K, H, 2\)"):
        imagine_futures(engine, state, np.zeros(shape, np.float32), RewardConfig())


def test_batched_state_is_refused(engine):
    state = engine.start([SceneRequest(0, 0, seed=0), SceneRequest(0, 0, seed=1)]).state
    with pytest.raises(ValueError, match="batch size 2"):
        imagine_futures(engine, state, np.zeros((2, 2, 2), np.float32), RewardConfig())
