"""The learned travel reader: shapes, scale, training signal, and the model folder's "odometry" stage."""

import numpy as np
import pytest
import torch

from drivesim.model_folder import save_stage
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.odometry import ODOMETRY_STAGE, TravelReader, TravelReaderConfig, load_travel_reader
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load

SMALL = TravelReaderConfig(height=16, width=32, channels=(8, 8, 8), hidden=16, mean=3.0, std=0.5)


def test_the_reader_gives_metres_per_pair_on_the_training_scale():
    reader = TravelReader(SMALL)
    torch.nn.init.zeros_(reader.head[-1].weight)
    torch.nn.init.zeros_(reader.head[-1].bias)
    x = torch.rand(5, 3, 16, 32) * 2 - 1
    out = reader(x, x.flip(0))
    assert out.shape == (5,)
    torch.testing.assert_close(out, torch.full((5,), 3.0))  # a zero head reads the training mean


def test_bad_frames_and_configs_are_refused():
    reader = TravelReader(SMALL)
    with pytest.raises(ValueError, match=r"expected both \(n, 3, 16, 32\)"):
        reader(torch.zeros(2, 3, 16, 32), torch.zeros(2, 3, 16, 30))
    with pytest.raises(ValueError, match="must divide by 4"):
        TravelReaderConfig(height=18, width=32, channels=(8, 8, 8))
    with pytest.raises(ValueError, match="std=0.0 must be > 0"):
        TravelReaderConfig(std=0.0)


def test_a_few_steps_fit_the_travel_of_fixed_pairs():
    torch.manual_seed(0)
    reader = TravelReader(SMALL)
    before = torch.rand(8, 3, 16, 32) * 2 - 1
    shift = torch.arange(8) % 4  # pixels the "road" moved: travel 2.5 + 0.25 per pixel
    after = torch.stack([torch.roll(b, int(s), dims=-2) for b, s in zip(before, shift)])
    travel = 2.5 + 0.25 * shift.float()
    opt = torch.optim.Adam(reader.parameters(), lr=3e-3)
    first = float(reader.loss(before, after, travel))
    for _ in range(60):
        loss = reader.loss(before, after, travel)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(reader.loss(before, after, travel)) < 0.2 * first


def test_the_odometry_stage_loads_with_its_model_and_anchoring_reads_with_it(tmp_path):
    folder = build_random_model(tmp_path / "m")
    assert load_travel_reader(folder) is None and load(folder).odometry is None
    reader = TravelReader(TravelReaderConfig(height=32, width=64, channels=(8, 8, 8), hidden=16, mean=2.0))
    save_stage(folder, ODOMETRY_STAGE, reader, reader.config, extra={"stride": 4})
    loaded, stride = load_travel_reader(folder)
    x = torch.rand(2, 3, 32, 64)
    torch.testing.assert_close(loaded(x, x), reader.eval()(x, x))
    assert stride == 4

    world = load(folder)
    calls = []
    world.odometry.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2)
    state = world.engine(EngineConfig(**fast)).start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    world.engine(EngineConfig(**fast)).step(state, np.array([[0.0, 0.3]], np.float32))
    assert calls == []  # only anchoring reads the travel
    world.engine(EngineConfig(**fast, anchor_travel=True)).step(state, np.array([[0.0, 0.3]], np.float32))
    assert calls == [torch.Size([1])]
