"""Filling keyframe intervals with the interpolation model (`drivesim.rollout.keyframe_fill`)."""

import numpy as np
import pytest
import torch

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.keyframe_fill import blend_keyframes, blend_levels, fill_keyframes, interpolation_levels
from drivesim.rollout.random_model import RandomModelSpec, build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from drivesim.sampling.video import VideoSamplingConfig
from tests.rollout.conftest import FAST


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fill")
    spec = RandomModelSpec(keyframe_stride=16)
    plain = load(build_random_model(root / "plain", spec))
    speedy = load(build_random_model(root / "speedy", RandomModelSpec(keyframe_stride=16, interpolation_speed=True)))
    return plain, speedy


def test_interpolation_levels_follow_the_keyframe_stride(worlds):
    interp = worlds[0].interpolation
    assert [interpolation_levels(interp, s) for s in (1, 4, 16, 64, 6)] == [0, 1, 2, 2, 0]
    assert interpolation_levels(None, 16) == 0


@torch.no_grad()
def test_fill_tells_a_speed_conditioned_interpolation_model_the_keyframe_speeds(worlds):
    keys = torch.randn(1, 3, 4, 8, 16, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([[0.1, 0.5]])
    for world, differs in zip(worlds, (False, True)):
        engine = LearnedEngine(world, EngineConfig(**FAST))
        cond = engine._conditioning(torch.tensor([0]), torch.tensor([1]), [None])

        def fill(speeds, actions=actions, interp=world.interpolation, cond=cond):
            gens = [torch.Generator().manual_seed(1)]
            sampling = VideoSamplingConfig(steps=2)
            return fill_keyframes(interp, interp.model, keys, actions, cond, gens, 2, 16, sampling, speeds)

        slow, fast = fill(torch.tensor([[5.0, 5.0, 6.0]])), fill(torch.tensor([[30.0, 31.0, 32.0]]))
        assert slow.shape == (1, 16, 4, 8, 16)
        torch.testing.assert_close(slow[:, -1], keys[:, -1])  # ends on the newest keyframe
        assert (not torch.allclose(slow, fast)) == differs
        # without actions the speed is not read either (it belongs to the "actions" condition)
        torch.testing.assert_close(fill(torch.tensor([[5.0, 5.0, 6.0]]), None), fill(None, None))


def test_the_engine_step_passes_the_state_speeds_to_the_interpolation_model(worlds):
    engine = LearnedEngine(worlds[1], EngineConfig(**FAST))
    s = engine.start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    act = np.array([[0.0, 0.5]], np.float32)
    slow, fast = engine.step(s, act), engine.step(s.with_(context_speed=s.context_speed + 20.0), act)
    assert torch.equal(slow.keyframes, fast.keyframes)  # the prediction model does not read speed here
    assert not np.array_equal(slow.frames, fast.frames)  # the interpolated frames do


def test_blending_walks_linearly_from_the_previous_keyframe_to_the_new_one():
    keys = torch.randn(2, 3, 4, 8, 16)
    out = blend_keyframes(keys, 4)
    assert out.shape == (2, 4, 4, 8, 16)
    torch.testing.assert_close(out[:, -1], keys[:, -1])
    torch.testing.assert_close(out[:, 1], 0.5 * (keys[:, -2] + keys[:, -1]))
    torch.testing.assert_close(out[:, 0], 0.75 * keys[:, -2] + 0.25 * keys[:, -1])
    assert [blend_levels(s) for s in (1, 2, 4, 8, 16, 64)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("stride", [4, 16])
@pytest.mark.parametrize("fill", ["blend", "warp"])
def test_an_engine_that_blends_or_warps_gives_as_many_frames_without_the_interpolation_model(tmp_path, stride, fill):
    folder = build_random_model(tmp_path / "m", RandomModelSpec(keyframe_stride=stride))
    fast = dict(keyframe_steps=1, first_frame_steps=1, interpolation_steps=1)
    model_fill = LearnedEngine(load(folder), EngineConfig(**fast))
    other = LearnedEngine(load(folder), EngineConfig(**fast, fill=fill))
    assert other.frames_per_step == model_fill.frames_per_step == stride
    state = other.start([SceneRequest(0, 1, seed=0, speed=20.0)]).state
    out = other.step(state, np.zeros((1, 2), np.float32))
    assert out.frames.shape[1] == stride
    with pytest.raises(ValueError, match=r"fill='cubic'; allowed: \['model', 'blend', 'warp'\]"):
        LearnedEngine(load(folder), EngineConfig(**fast, fill="cubic"))
