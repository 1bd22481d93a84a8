import math

import numpy as np
import pytest
import torch

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.degrade import add_noise, shuffle_frames
from drivesim.eval.temporal import flicker, motion_stats, psnr, ssim


def test_psnr_known_value_and_identity():
    target = torch.zeros(1, 2, 3, 8, 8)
    gen = torch.full_like(target, 0.1)  # 0.05 in [0, 1] units -> mse 0.0025
    assert psnr(gen, target) == pytest.approx(10 * math.log10(1 / 0.0025), rel=1e-6)
    assert psnr(target, target) == pytest.approx(100.0)


def test_ssim_identity_and_monotonic_in_noise(clips):
    video = uint8_to_video(clips[:2])
    assert ssim(video, video) == pytest.approx(1.0, abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    values = [ssim(add_noise(video, std, gen), video) for std in (0.05, 0.1, 0.2, 0.4)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_static_video_has_no_motion():
    video = torch.zeros(2, 5, 3, 8, 8)
    stats = motion_stats(video)
    assert stats.change == 0.0 and stats.jitter == 0.0


def test_flicker_orders_noise_and_shuffle(clips):
    real = uint8_to_video(clips)
    gen = torch.Generator().manual_seed(0)
    assert flicker(real, real, paired=True).flicker == 0.0
    assert flicker(real, real, paired=True).paired_delta_error == 0.0
    noise = [flicker(add_noise(real, s, gen), real, paired=True) for s in (0.02, 0.05, 0.1, 0.2)]
    assert [r.flicker for r in noise] == sorted(r.flicker for r in noise)
    assert [r.paired_delta_error for r in noise] == sorted(r.paired_delta_error for r in noise)
    shuffled = [
        flicker(shuffle_frames(real, f, torch.Generator().manual_seed(1)), real).flicker for f in (0.0, 0.5, 1.0)
    ]
    assert shuffled[0] == 0.0 and shuffled[0] < shuffled[1] < shuffled[2]


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(2, 3, 8, 8), "shape"),
        (torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8), "float"),
        (torch.full((1, 2, 3, 8, 8), 3.0), r"\[-1, 1\]"),
        (torch.zeros(0, 2, 3, 8, 8), "empty"),
        (torch.zeros(1, 2, 1, 8, 8), "3 channels"),
        (np.zeros((1, 2, 3, 8, 8), np.float32), "torch.Tensor"),
    ],
)
def test_bad_videos_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        psnr(bad, torch.zeros(1, 2, 3, 8, 8))


def test_paired_metrics_need_same_shape():
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(1, 2, 3, 16, 16), torch.zeros(1, 3, 3, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        flicker(torch.zeros(1, 2, 3, 16, 16), torch.zeros(2, 2, 3, 16, 16), paired=True)


def test_single_frame_has_no_motion_metric():
    with pytest.raises(ValueError, match="at least 2 frames"):
        motion_stats(torch.zeros(1, 1, 3, 8, 8))
