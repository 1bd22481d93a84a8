"""Filling keyframe intervals by the ego-motion warp: travel, geometry against the world, the engine's fill."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drivesim.diffusion.ego_warp import GroundCamera, ground_rows, ground_warp, warp_travel
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.warp_fill import travel_between, warp_between, warp_fill
from drivesim.rollout.world_model import load
from drivesim.world.world import World


def test_travel_is_the_trapezoid_of_speeds_linear_between_the_keyframes():
    d = travel_between(torch.tensor([[10.0, 10.0], [10.0, 14.0]]), 4, 0.1)
    torch.testing.assert_close(d[0], torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    # v(t) = 10 + 10 t over 0.4 s: D(t) = 10 t + 5 t^2
    t = torch.arange(5) * 0.1
    torch.testing.assert_close(d[1], 10 * t + 5 * t**2)
    with pytest.raises(ValueError, match="key_speeds must have shape \\(b, 2\\)"):
        travel_between(torch.zeros(2, 3), 4, 0.1)
    with pytest.raises(ValueError, match="num_frames=0 must be >= 1"):
        travel_between(torch.zeros(2, 2), 0, 0.1)


def test_a_backward_warp_has_no_road_for_the_nearest_rows_and_undoes_a_forward_one_far_away():
    grid, valid = ground_warp(torch.tensor([0.0, 3.0, -3.0]), 32, 64, GroundCamera())
    assert bool(valid[:2].all())  # no travel and forward travel: every row is right
    sky, bonnet = 13, 29
    assert bool(valid[2, :sky].all()) and bool(valid[2, bonnet:].all())
    assert not bool(valid[2, bonnet - 1])  # the nearest road row would come from under the bonnet
    assert bool(valid[2, sky + 1])  # far rows come from the road just nearer
    img = F.interpolate(torch.randn(1, 3, 4, 8), size=(32, 64), mode="bilinear")  # smooth: resampling keeps it
    there, _ = warp_travel(img, torch.tensor([2.0]), GroundCamera())
    back, ok = warp_travel(there, torch.tensor([-2.0]), GroundCamera())
    far = slice(sky + 1, sky + 4)  # rows near the horizon barely move: resampling there is nearly exact
    assert float((back - img)[..., far, :].abs().mean()) < 0.05 * float(img[..., far, :].abs().mean())
    assert ok.shape == (1, 1, 32, 1)


def _world_interval(seed: int, frames: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """frames + 1 world renders one step apart (no traffic drawn, so only the ego moves) and the ego speeds."""
    w = World()
    w.reset(seed=seed, crowdedness="low")
    for _ in range(10):
        w.step(np.array([0.0, 0.6], np.float32))
    shots, speeds = [], []
    for k in range(frames + 1):
        if k:
            w.step(np.array([0.0, 0.6], np.float32))
        shots.append(w.render(64, 128, draw_vehicles=False).image)
        speeds.append(w._scene().ego.speed)
    video = torch.from_numpy(np.stack(shots)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # t 3 h w
    return video, torch.tensor(speeds)


def test_warped_in_between_frames_match_the_world_best_at_the_distance_driven():
    """On the road rows, warping by the travel the speeds give beats not moving (the keyframes'
    linear blend) and moving twice as far."""
    rows = ground_rows(64, GroundCamera())
    errors = {0.0: 0.0, 1.0: 0.0, 2.0: 0.0}
    for seed in range(3):
        video, speeds = _world_interval(seed)
        travel = travel_between(speeds[[0, -1]][None], 4, 1.0 / 30.0)
        for scale in errors:
            mid = warp_between(video[:1], video[-1:], scale * travel, GroundCamera())[0]  # 3 3 h w
            errors[scale] += float(F.mse_loss(mid[:, :, rows], video[1:4, :, rows]))
    blend = warp_between(video[:1], video[-1:], 0.0 * travel, GroundCamera())[0]
    w = torch.tensor([0.25, 0.5, 0.75])[:, None, None, None]
    torch.testing.assert_close(blend, video[:1] * (1 - w) + video[-1:] * w)  # no travel: the linear blend
    assert errors[1.0] < 0.95 * errors[0.0] and errors[1.0] < errors[2.0]


class PoolCodec:
    """A stand-in autoencoder: frames are latents upsampled x4, latents are frames pooled /4."""

    def decode(self, z):
        return F.interpolate(z, scale_factor=4, mode="nearest")

    def encode(self, x):
        return F.avg_pool2d(x, 4)


def test_warp_fill_ends_on_the_new_keyframe_and_moves_with_the_speed():
    keys = torch.randn(2, 3, 3, 16, 32)
    slow = warp_fill(keys, torch.full((2, 3), 1.0), 4, 1 / 30, PoolCodec(), GroundCamera())
    fast = warp_fill(keys, torch.full((2, 3), 30.0), 4, 1 / 30, PoolCodec(), GroundCamera())
    assert slow.shape == (2, 4, 3, 16, 32)
    torch.testing.assert_close(slow[:, -1], keys[:, -1])
    assert not torch.allclose(slow[:, :3], fast[:, :3])
    with pytest.raises(ValueError, match="key_speeds has shape \\(2, 2\\); expected \\(2, 3\\)"):
        warp_fill(keys, torch.zeros(2, 2), 4, 1 / 30, PoolCodec(), GroundCamera())


def test_the_engine_fills_by_warp_without_the_interpolation_model(tmp_path):
    world = load(build_random_model(tmp_path / "m"))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2)
    engine = LearnedEngine(world, EngineConfig(**fast, fill="warp"))
    called = []
    world.interpolation.model.forward = lambda *a, **kw: called.append(1)  # would break the rollout
    out = engine.start([SceneRequest(0, 1, seed=0, speed=20.0)])
    step = engine.step(out.state, np.array([[0.0, 0.5]], np.float32))
    assert step.frames.shape[1] == engine.frames_per_step > 1 and not called
    keys = torch.cat([out.state.context, step.keyframes[:, None]], dim=1)
    cond = engine._conditioning(out.state.time_of_day, out.state.crowdedness, [None])
    a = engine.fill(keys, None, cond, [torch.Generator()], torch.full((1, 3), 5.0))
    b = engine.fill(keys, None, cond, [torch.Generator()], torch.full((1, 3), 30.0))
    assert not torch.allclose(a[:, :-1], b[:, :-1])
    with pytest.raises(ValueError, match="needs the keyframes' ego speeds"):
        engine.fill(keys, None, cond, [torch.Generator()], None)


def test_the_engine_codec_takes_codec_frames_a_call_and_fills_the_same(tmp_path):
    world = load(build_random_model(tmp_path / "m"))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2, fill="warp")
    one = LearnedEngine(world, EngineConfig(**fast, codec_frames=0))
    chunked = LearnedEngine(world, EngineConfig(**fast, codec_frames=3))
    assert (one.frame_codec.max_frames, chunked.frame_codec.max_frames) == (0, 3)
    keys = torch.randn(4, 3, *one.latent_shape)  # 4 rollouts: 8 keyframes decoded, 4 x 3 in-between frames encoded
    speeds = torch.full((4, 3), 20.0)
    cond = one._conditioning(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), [None] * 4)
    a = one.fill(keys, None, cond, [torch.Generator()] * 4, speeds)
    b = chunked.fill(keys, None, cond, [torch.Generator()] * 4, speeds)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="codec_frames=-1"):
        LearnedEngine(world, EngineConfig(codec_frames=-1))


def test_the_engine_warp_fill_runs_in_the_compute_dtype_and_returns_float32(tmp_path):
    world = load(build_random_model(tmp_path / "m"))
    fast = dict(keyframe_steps=2, first_frame_steps=2, interpolation_steps=2, fill="warp")
    f32, bf16 = LearnedEngine(world, EngineConfig(**fast)), LearnedEngine(world, EngineConfig(**fast, dtype="bfloat16"))
    keys, speeds = torch.randn(2, 3, *f32.latent_shape), torch.full((2, 3), 20.0)
    cond = f32._conditioning(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), [None] * 2)
    seen = []
    encode = world.autoencoder.encode
    world.autoencoder.encode = lambda x: seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                                                     else None) or encode(x)  # fmt: skip
    try:
        a = f32.fill(keys, None, cond, [torch.Generator()] * 2, speeds)
        b = bf16.fill(keys, None, cond, [torch.Generator()] * 2, speeds)
    finally:
        del world.autoencoder.encode
    assert seen == [None, torch.bfloat16]  # float32: no autocast; bfloat16: the codec under autocast
    assert a.dtype == b.dtype == torch.float32
    assert (a - b).abs().mean() < 0.1 * a.abs().mean()  # the same frames within bfloat16's precision
