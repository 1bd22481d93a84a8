"""benchmarks/_interp_eval.py: the interpolation benchmark's warp rows (the keyframes moved by the true speeds)
and one end-to-end evaluation on a tiny random model."""

import numpy as np
import pytest
import torch

from drivesim.diffusion.video_unet import VideoUNetConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.world_model import load
from drivesim.sampling.interpolation import blend_keyframes
from drivesim.sampling.video import VideoSamplingConfig
from tests.benchmarks import load_benchmark

CAMERA = VideoUNetConfig().camera()  # the defaults: the world's camera


@pytest.fixture(scope="module")
def interp_eval():
    return load_benchmark("_interp_eval")


def test_warp_keyframes_keeps_the_keyframes_and_blends_them_when_standing_still(interp_eval):
    torch.manual_seed(0)
    keys = torch.rand(2, 3, 3, 32, 64) * 2 - 1
    still = interp_eval.warp_keyframes(keys, torch.zeros(2, 3), 4, 1 / 30, CAMERA)
    assert still.shape == (2, 9, 3, 32, 64)
    torch.testing.assert_close(still[:, ::4], keys)
    torch.testing.assert_close(still, blend_keyframes(keys, 4), atol=1e-5, rtol=1e-5)  # no travel: the blend
    moving = interp_eval.warp_keyframes(keys, torch.full((2, 3), 20.0), 4, 1 / 30, CAMERA)
    torch.testing.assert_close(moving[:, ::4], keys)
    assert (moving[:, 1:4] - still[:, 1:4]).abs().mean() > 1e-3  # the road moved


def test_the_interpolation_benchmark_scores_the_warp_beside_the_blends(interp_eval, tmp_path):
    torch.set_num_threads(1)
    world = load(build_random_model(tmp_path))
    clips = load_benchmark("_video_eval").render_real(5000, 2, 17, 32, 64, 30)
    plan = interp_eval.interpolation_levels(world)[-1:]  # the finest level alone: keyframes 4 frames apart
    level = interp_eval.evaluate_interpolation(world, clips, plan, "4 -> 1", 3, VideoSamplingConfig(steps=2), 0, 2)
    psnr = level.psnr
    for value in (psnr.model, psnr.latent_lerp, psnr.pixel_lerp, psnr.pixel_warp, psnr.warp_fill):
        assert np.isfinite(value) and 0 < value < 100
    assert psnr.pixel_warp != psnr.pixel_lerp  # the world's clips move: the warp is not the blend
