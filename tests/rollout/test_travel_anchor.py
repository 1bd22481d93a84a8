"""Travel anchoring: new keyframes moved along the road to where the ego speed puts them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drivesim.diffusion.ego_warp import GroundCamera, ground_rows, warp_forward
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.travel_anchor import anchor_travel, told_travel
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from drivesim.world.world import World


def _world_frame(seed: int) -> torch.Tensor:
    """(1, 3, 64, 128) a world render in [-1, 1], no traffic drawn."""
    w = World()
    w.reset(seed=seed, crowdedness="low")
    for _ in range(10):
        w.step(np.array([0.0, 0.2], np.float32))
    image = w.render(64, 128, draw_vehicles=False).image
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None] / 127.5 - 1.0


class Identity:
    """A codec whose latents are the frames themselves (the anchoring's geometry, without an autoencoder)."""

    def decode(self, z):
        return z

    def encode(self, x):
        return x


@pytest.mark.parametrize("drawn,told", [(1.0, 3.0), (3.0, 1.0)])
def test_a_keyframe_is_moved_to_the_told_travel_forwards_and_backwards(drawn, told):
    cam = GroundCamera()
    a = _world_frame(1)
    new = warp_forward(a, torch.tensor([drawn]), cam)  # the model drew `drawn` metres
    target = warp_forward(a, torch.tensor([told]), cam)  # where the speed puts it
    anchored, fitted = anchor_travel(a, new, torch.tensor([told]), Identity(), cam)
    assert abs(float(fitted[0]) - drawn) <= 0.21
    rows = ground_rows(64, cam).nonzero().flatten()
    far = rows[: len(rows) // 2]  # backward warps cannot show the nearest rows: compare the farther half
    before = F.mse_loss(new[:, :, far], target[:, :, far])
    after = F.mse_loss(anchored[:, :, far], target[:, :, far])
    assert float(after) < 0.5 * float(before)
    if told < drawn:  # the nearest road rows cannot come from under the bonnet: they keep the model's frame
        torch.testing.assert_close(anchored[:, :, rows[-1]], new[:, :, rows[-1]])


def test_told_travel_is_the_trapezoid_of_the_last_two_speeds():
    d = told_travel(torch.tensor([[5.0, 10.0, 20.0]]), 4, 30.0)
    torch.testing.assert_close(d, torch.tensor([2.0]))
    with pytest.raises(ValueError, match="key_speeds must have shape \\(b, k >= 2\\)"):
        told_travel(torch.tensor([[5.0]]), 4, 30.0)


def test_an_anchoring_engine_moves_keyframes_with_the_state_speed(tmp_path):
    world = load(build_random_model(tmp_path / "m"))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2)
    act = np.array([[0.0, 0.3]], np.float32)
    plain = LearnedEngine(world, EngineConfig(**fast))
    anchoring = LearnedEngine(world, EngineConfig(**fast, anchor_travel=True))
    started = plain.start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    fast_state = started.with_(context_speed=started.context_speed + 25.0)
    for eng, moves in ((anchoring, True), (plain, False)):
        a, b = eng.step(started, act).keyframes, eng.step(fast_state, act).keyframes
        assert (not torch.allclose(a, b)) == moves


class FixedReader:
    """A travel reader that reads the same distance for every pair."""

    def __init__(self, metres: float) -> None:
        self.metres = metres

    def __call__(self, before, after):
        return torch.full((before.shape[0],), self.metres)


def test_a_reader_replaces_the_fit_as_the_measured_travel():
    cam = GroundCamera()
    a = _world_frame(1)
    new = warp_forward(a, torch.tensor([1.0]), cam)
    anchored, read = anchor_travel(a, new, torch.tensor([3.0]), Identity(), cam, reader=FixedReader(3.0))
    assert float(read[0]) == 3.0  # what the reader read, not the fit's 1 m
    torch.testing.assert_close(anchored, new)  # it reads the told travel already: nothing moves
    moved, _ = anchor_travel(a, new, torch.tensor([3.0]), Identity(), cam, reader=FixedReader(1.0))
    rows = ground_rows(64, cam).nonzero().flatten()
    target = warp_forward(a, torch.tensor([3.0]), cam)
    far = rows[: len(rows) // 2]
    before, after = F.mse_loss(new[:, :, far], target[:, :, far]), F.mse_loss(moved[:, :, far], target[:, :, far])
    assert float(after) < 0.5 * float(before)  # read 1 m, told 3: moved 2 m on


def test_a_gain_moves_the_keyframe_that_fraction_of_the_way():
    cam = GroundCamera()
    a = _world_frame(2)
    new = warp_forward(a, torch.tensor([1.0]), cam)
    told = torch.tensor([3.0])
    half, read = anchor_travel(a, new, told, Identity(), cam, reader=FixedReader(1.0), gain=0.5)
    # a half gain with a reading of 1 m moves as far as the full gain with a reading of 2 m: 1 m forward
    full, _ = anchor_travel(a, new, told, Identity(), cam, reader=FixedReader(2.0))
    torch.testing.assert_close(half, full)
    assert float(read[0]) == 1.0
    assert not torch.allclose(half, anchor_travel(a, new, told, Identity(), cam, reader=FixedReader(1.0))[0])
    with pytest.raises(ValueError, match=r"anchor_gain=0.0; allowed \(0, 1\]"):
        EngineConfig(anchor_gain=0.0)
