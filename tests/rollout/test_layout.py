"""`EngineConfig.layout`: channels-last convolution weights for the per-step networks, "auto" with bfloat16."""

import numpy as np
import pytest
import torch
from torch import nn

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.layout import resolve_layout, to_channels_last
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from tests.rollout.conftest import FAST


@pytest.mark.parametrize(("name", "dtype", "expected"), [
    ("auto", "bfloat16", "channels_last"), ("auto", "float32", "nchw"),
    ("nchw", "bfloat16", "nchw"), ("channels_last", "float32", "channels_last"),
])  # fmt: skip
def test_resolve_layout(name, dtype, expected):
    assert resolve_layout(name, dtype) == expected


def test_bad_layout_names_the_allowed():
    with pytest.raises(ValueError, match=r"layout='nhwc'; allowed: \['auto', 'nchw', 'channels_last'\]"):
        EngineConfig(layout="nhwc")
    with pytest.raises(ValueError, match="layout='nhwc'"):
        resolve_layout("nhwc", "float32")


def test_to_channels_last_converts_2d_and_3d_convolutions_and_skips_none():
    net = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Conv3d(8, 8, (3, 1, 1)), nn.Linear(8, 8))
    to_channels_last(net, None)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()
    assert net[1].weight.is_contiguous(memory_format=torch.channels_last_3d) and not net[1].weight.is_contiguous()
    assert net[2].weight.is_contiguous()  # 2-D: unchanged


def _rollout(engine):
    state = engine.start([SceneRequest(0, 1, seed=3)]).state
    return engine.step(state, np.array([[0.3, 0.0]], np.float32)).frames.astype(np.float32)


def test_channels_last_engine_converts_its_networks_and_keeps_the_frames(model_dir):
    nchw = _rollout(LearnedEngine(load(model_dir), EngineConfig(layout="nchw", **FAST)))
    world = load(model_dir)
    engine = LearnedEngine(world, EngineConfig(layout="channels_last", **FAST))
    assert engine.layout == "channels_last"
    for net in (engine.video.model, world.interpolation.model, world.temporal_decoder):
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    frames = _rollout(engine)
    assert frames.shape == nchw.shape
    assert np.abs(frames - nchw).max() <= 2  # of 255: the same rollout, convolutions in another memory order
    assert LearnedEngine(load(model_dir), EngineConfig(**FAST)).layout == "nchw"  # float32 default: auto keeps NCHW
