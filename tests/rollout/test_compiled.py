"""`EngineConfig.compile`: the engine compiles its per-step networks with static shapes, only when asked."""

import pytest
import torch

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.world_model import load
from tests.rollout.conftest import FAST


def test_compile_flag_compiles_the_three_networks_with_static_shapes(model_dir, monkeypatch):
    calls = []  # (module, kwargs) of each nn.Module.compile call; compiling itself takes minutes, so not run
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: calls.append((self, kw)))
    world = load(model_dir)
    engine = LearnedEngine(world, EngineConfig(compile=True, **FAST))
    assert engine.compiled == ["prediction", "interpolation", "temporal_decoder"]
    assert [m for m, _ in calls] == [engine.video.model, world.interpolation.model, world.temporal_decoder]
    assert all(kw == {"dynamic": False} for _, kw in calls)
    calls.clear()
    assert LearnedEngine(world, EngineConfig(**FAST)).compiled == [] and calls == []
    blended = LearnedEngine(world, EngineConfig(compile=True, fill="blend", **FAST))
    assert blended.compiled == ["prediction", "temporal_decoder"]


def test_compile_must_be_a_bool():
    with pytest.raises(ValueError, match="compile='yes'; allowed: true or false"):
        EngineConfig(compile="yes")
