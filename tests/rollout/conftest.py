"""Shared by the engine-level rollout tests: a tiny random model folder (real files) and a fast engine on it."""

import pytest
import torch

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.world_model import load

FAST = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return build_random_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def engine(model_dir):
    return LearnedEngine(load(model_dir), EngineConfig(**FAST))
