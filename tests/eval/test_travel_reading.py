"""drivesim/eval/travel_reading.py: true travel of frame pairs, reading them, scoring the reading."""

import numpy as np
import pytest
import torch

from drivesim.diffusion.ego_warp import GroundCamera, warp_travel
from drivesim.eval.travel_reading import read_travel, travel_pairs, travel_score


def test_pairs_carry_the_trapezoid_travel_between_their_frames():
    speed = np.stack([np.full(7, 30.0), np.arange(7) * 3.0]).astype(np.float32)  # m/s per frame, 2 clips
    idx, travel = travel_pairs(speed, 4, 30.0)
    assert idx.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    np.testing.assert_allclose(travel[:3], 4.0, rtol=1e-6)  # 30 m/s for 4 frames at 30 fps
    np.testing.assert_allclose(travel[3], (0.0 + 12.0) / 2 * 4 / 30, rtol=1e-6)  # speed rising linearly 0 -> 12
    idx, travel = travel_pairs(np.arange(2 * 13, dtype=np.float32).reshape(2, 13), 4, 30.0, every=4)
    assert idx.tolist() == [[0, 0], [0, 4], [0, 8], [1, 0], [1, 4], [1, 8]]  # keyframe-aligned starts only
    with pytest.raises(ValueError, match="every 0 >= 1"):
        travel_pairs(speed, 4, 30.0, every=0)


def test_the_score_tells_following_the_speed_inside_a_clip_from_only_across_clips():
    rng = np.random.default_rng(0)
    clip = np.repeat(np.arange(4), 50)
    true = 2.0 + clip * 0.5 + rng.normal(0, 0.3, len(clip))  # each clip its own mean speed, and changes inside
    follows = true + rng.normal(0, 0.05, len(true))
    means_only = np.array([true[clip == c].mean() for c in clip]) + rng.normal(0, 0.05, len(true))
    good, flat = travel_score(follows, true, clip), travel_score(means_only, true, clip)
    assert good["within_clip_pearson"] > 0.95 and abs(flat["within_clip_pearson"]) < 0.3
    assert good["pearson"] > 0.95 and flat["pearson"] > 0.6  # across clips both read the speed
    assert abs(good["bias_m"]) < 0.02 and good["read_mean_m"] == pytest.approx(follows.mean())
    with pytest.raises(ValueError, match="must be the same"):
        travel_score(follows[:3], true[:4])


def test_the_fitted_warp_reads_a_frame_moved_along_the_road_by_a_known_travel():
    torch.manual_seed(0)
    small = torch.rand(1, 3, 8, 16) * 2 - 1
    frame = torch.nn.functional.interpolate(small, size=(64, 128), mode="bilinear")
    moved, _ = warp_travel(frame, torch.tensor([3.0]), GroundCamera())
    video = ((torch.stack([frame[0], moved[0]]) + 1) * 127.5).clamp(0, 255).round().byte()
    frames = video.permute(0, 2, 3, 1).numpy()[None]  # 1 clip, 2 frames, h w 3
    read = read_travel(None, frames, np.array([[0, 0]]), 1)
    assert read.shape == (1,) and abs(float(read[0]) - 3.0) < 0.5
