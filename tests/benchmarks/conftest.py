"""Shared by the speed-benchmark tests: a fast engine on a tiny random model folder."""

import pytest
import torch

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.world_model import load


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    torch.set_num_threads(1)
    folder = build_random_model(tmp_path_factory.mktemp("model"))
    return LearnedEngine(load(folder), EngineConfig(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2))
