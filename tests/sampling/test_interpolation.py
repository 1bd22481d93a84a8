"""Interpolation over the video sampler: windows, keyframes kept, speeds told, and linear blending."""

import pytest
import torch

from drivesim.sampling.interpolation import blend_keyframes, interpolate, interpolation_windows
from drivesim.sampling.video import VideoSamplingConfig
from tests.sampling.test_video_sampling import SCHEDULE, C, H, W, _model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_interpolation_windows():
    assert interpolation_windows(3, 3) == [(0, 2)]
    assert interpolation_windows(4, 3) == [(0, 2), (1, 3)]
    assert interpolation_windows(5, 3) == [(0, 2), (2, 4)]
    assert interpolation_windows(2, 3) == [(0, 1)]
    assert interpolation_windows(6, 2) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    with pytest.raises(ValueError, match="keyframes"):
        interpolation_windows(1, 3)


@torch.no_grad()
def test_interpolate_keeps_keyframes_at_every_fourth_frame():
    model = _model(num_frame_rates=2, use_actions=False)
    keyframes = torch.randn(2, 4, C, H, W, generator=torch.Generator().manual_seed(3))
    out = interpolate(model, SCHEDULE, "eps", keyframes, torch.Generator().manual_seed(0), frame_rate=1,
                      keys_per_window=3, config=VideoSamplingConfig(steps=2))
    assert out.latents.shape == (2, 13, C, H, W)
    assert torch.equal(out.latents[:, ::4], keyframes)
    assert out.known[0].nonzero().flatten().tolist() == [0, 4, 8, 12]
    assert bool(torch.isfinite(out.latents).all())
    other = interpolate(model, SCHEDULE, "eps", keyframes, torch.Generator().manual_seed(0), frame_rate=0,
                        keys_per_window=3, config=VideoSamplingConfig(steps=2))
    assert not torch.allclose(other.latents[:, 1:4], out.latents[:, 1:4], atol=1e-5)


@torch.no_grad()
def test_interpolate_tells_a_speed_conditioned_model_each_frames_speed():
    model = _model(num_frame_rates=2, speed_conditioning=True)
    keyframes = torch.randn(1, 3, C, H, W, generator=torch.Generator().manual_seed(3))
    actions = torch.zeros(1, 9, 2)

    def run(speed):
        return interpolate(model, SCHEDULE, "eps", keyframes, torch.Generator().manual_seed(0), frame_rate=0,
                           actions=actions, config=VideoSamplingConfig(steps=2), ego_speed=speed).latents

    slow, fast = run(torch.full((1, 9), 5.0)), run(torch.full((1, 9), 30.0))
    assert torch.equal(slow[:, ::4], fast[:, ::4]) and not torch.allclose(slow, fast, atol=1e-5)
    with pytest.raises(ValueError, match="ego_speed has shape"):
        run(torch.zeros(1, 3))


def test_blend_keyframes_keeps_the_keys_and_blends_linearly_between_them():
    keys = torch.randn(2, 3, C, H, W, generator=torch.Generator().manual_seed(7))
    out = blend_keyframes(keys, 4)
    assert out.shape == (2, 9, C, H, W) and torch.equal(out[:, ::4], keys)
    torch.testing.assert_close(out[:, 1], 0.75 * keys[:, 0] + 0.25 * keys[:, 1])
    torch.testing.assert_close(out[:, 6], 0.5 * keys[:, 1] + 0.5 * keys[:, 2])
    speeds = blend_keyframes(torch.tensor([[10.0, 20.0]]), 2)  # (b, k) per-frame speeds too
    assert speeds.tolist() == [[10.0, 15.0, 20.0]]
