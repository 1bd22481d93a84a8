"""The learned travel reader: shapes, scale, training signal, and the model folder's "odometry" stage."""

import dataclasses

import numpy as np
import pytest
import torch

from drivesim.diffusion.ego_warp import GroundCamera, warp_forward
from drivesim.model_folder import save_stage
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.odometry import ODOMETRY_STAGE, TravelReader, TravelReaderConfig, load_travel_reader
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load

SMALL = TravelReaderConfig(height=16, width=32, channels=(8, 8, 8), hidden=16, mean=3.0, std=0.5)
PROFILE = TravelReaderConfig(height=32, width=64, channels=(8, 8), head="profile", bands=4, max_travel=6.0)


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
    with pytest.raises(ValueError, match="head='flow'; allowed: 'dense' or 'profile'"):
        TravelReaderConfig(head="flow")
    with pytest.raises(ValueError, match="bands=3 must be >= 1 and divide width=64"):
        TravelReaderConfig(height=32, width=64, head="profile", bands=3)
    with pytest.raises(ValueError, match="travel_step=2.0 must be in"):
        TravelReaderConfig(head="profile", max_travel=1.0, travel_step=2.0)


def test_the_profile_head_matches_the_ground_geometry():
    """With the pixels as features and a sharp softmin, the profile head reads the travel of a pair made by
    the ego-motion warp itself, to the grid's spacing; the reading does not depend on the features' scale."""
    reader = TravelReader(PROFILE)
    reader.features = torch.nn.Identity()
    with torch.no_grad():
        reader.log_temperature.fill_(-9.0)
    torch.manual_seed(0)
    before = torch.nn.functional.interpolate(torch.rand(5, 3, 8, 16) * 2 - 1, size=(32, 64), mode="bilinear")
    travel = torch.tensor([0.0, 0.7, 1.9, 3.2, 5.1])
    after = warp_forward(before, travel, GroundCamera())
    torch.testing.assert_close(reader(before, after), travel, atol=0.051, rtol=0)
    torch.testing.assert_close(reader(3 * before, 3 * after), reader(before, after))
    wrong = reader(before, warp_forward(before, torch.full((5,), 5.5), GroundCamera()))
    assert (wrong - travel).abs().min() > 0.3  # another travel reads otherwise


@pytest.mark.parametrize("head", ["dense", "profile"])
def test_a_few_steps_fit_the_travel_of_fixed_pairs(head):
    torch.manual_seed(0)
    if head == "dense":
        reader = TravelReader(SMALL)
        before = torch.rand(8, 3, 16, 32) * 2 - 1
        shift = torch.arange(8) % 4  # pixels the "road" moved: travel 2.5 + 0.25 per pixel
        after = torch.stack([torch.roll(b, int(s), dims=-2) for b, s in zip(before, shift)])
        travel = 2.5 + 0.25 * shift.float()
    else:
        reader = TravelReader(dataclasses.replace(PROFILE, mean=2.5, std=1.0))
        before = torch.nn.functional.interpolate(torch.rand(8, 3, 8, 16) * 2 - 1, size=(32, 64), mode="bilinear")
        travel = 1.0 + 0.5 * (torch.arange(8) % 6).float()
        after = warp_forward(before, travel, GroundCamera())
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
    profile = TravelReader(PROFILE)
    with torch.no_grad():
        profile.row_weight.normal_()
    save_stage(folder, ODOMETRY_STAGE, profile, profile.config, extra={"stride": 4})
    loaded, _ = load_travel_reader(folder)
    assert loaded.config == PROFILE
    torch.testing.assert_close(loaded(x, x.flip(-2)), profile.eval()(x, x.flip(-2)))

    world = load(folder)
    calls = []
    world.odometry.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2)
    state = LearnedEngine(world, EngineConfig(**fast)).start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    LearnedEngine(world, EngineConfig(**fast)).step(state, np.array([[0.0, 0.3]], np.float32))
    assert calls == []  # only anchoring reads the travel
    LearnedEngine(world, EngineConfig(**fast, anchor_travel=True)).step(state, np.array([[0.0, 0.3]], np.float32))
    assert calls == [torch.Size([1])]


def test_the_reader_reads_in_float32_under_bfloat16_autocast():
    reader = TravelReader(PROFILE).eval()
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        plain = reader(x, x.flip(-2))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cast = reader(x.bfloat16(), x.flip(-2).bfloat16())
    assert cast.dtype == torch.float32
    torch.testing.assert_close(cast, plain, atol=0.02, rtol=0)  # only the inputs' bfloat16 rounding
