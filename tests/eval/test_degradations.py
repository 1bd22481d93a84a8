import numpy as np
import pytest
import torch
from einops import reduce

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.degrade import add_noise, darken, gaussian_blur, jitter_boxes, shuffle_frames, swap_labels
from drivesim.eval.frechet import frechet_from_features
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


def pixel_features(video: torch.Tensor) -> np.ndarray:
    """A fixed, training-free feature per frame: 2x4 average-pooled RGB and gradient energy."""
    pooled = reduce(video, "b t c (h p) (w q) -> (b t) (c h w)", "mean", h=2, w=4)
    dx = reduce(video.diff(dim=-1).abs(), "b t c (h p) (w q) -> (b t) (h w)", "mean", h=2, w=3)
    dy = reduce(video.diff(dim=-2).abs(), "b t c (h p) (w q) -> (b t) (h w)", "mean", h=1, w=4)
    return torch.cat([pooled, dx, dy], dim=1).double().numpy()


def test_blur_and_noise_are_monotonic_for_pixel_fid(make_clips):
    real = uint8_to_video(make_clips(16, 6, seed=0))
    other = uint8_to_video(make_clips(16, 6, seed=1))  # real vs real (held-out) reference
    base = frechet_from_features(pixel_features(other), pixel_features(real))
    blur = [frechet_from_features(pixel_features(gaussian_blur(other, s)), pixel_features(real)) for s in (1, 2, 4)]
    gen = torch.Generator().manual_seed(0)
    noise = [
        frechet_from_features(pixel_features(add_noise(other, s, gen)), pixel_features(real)) for s in (0.2, 0.4, 0.8)
    ]
    dark = [frechet_from_features(pixel_features(darken(other, f)), pixel_features(real)) for f in (0.2, 0.4, 0.8)]
    assert base < blur[0] < blur[1] < blur[2]
    assert base < noise[0] < noise[1] < noise[2]
    assert base < dark[0] < dark[1] < dark[2]


def test_blur_zero_is_identity_and_reduces_detail(clips):
    video = uint8_to_video(clips)
    assert torch.equal(gaussian_blur(video, 0.0), video)
    detail = [float((gaussian_blur(video, s).diff(dim=-1)).abs().mean()) for s in (0.0, 0.5, 1.0, 2.0)]
    assert detail == sorted(detail, reverse=True)
    assert gaussian_blur(video, 1.0).shape == video.shape


def test_shuffle_moves_requested_fraction(clips):
    video = uint8_to_video(clips)
    assert torch.equal(shuffle_frames(video, 0.0, torch.Generator().manual_seed(0)), video)
    for fraction in (0.5, 1.0):
        out = shuffle_frames(video, fraction, torch.Generator().manual_seed(0))
        moved = (out != video).flatten(2).any(-1).float().mean()
        assert float(moved) == pytest.approx(round(fraction * video.shape[1]) / video.shape[1])
        assert sorted(out[0].flatten(1).sum(1).tolist()) == pytest.approx(sorted(video[0].flatten(1).sum(1).tolist()))


def test_swap_labels_fraction():
    labels = [TIME_OF_DAY[i % 2] for i in range(10)]
    gen = torch.Generator().manual_seed(0)
    assert swap_labels(labels, 0.0, TIME_OF_DAY, gen) == labels
    half = swap_labels(labels, 0.5, TIME_OF_DAY, gen)
    assert sum(a != b for a, b in zip(labels, half)) == 5
    crowd = swap_labels(["low"] * 4, 1.0, CROWDEDNESS, gen)
    assert all(c != "low" and c in CROWDEDNESS for c in crowd)


def test_jitter_boxes_moves_boxes():
    boxes = [np.array([[0.2, 0.2, 0.4, 0.4]], np.float32)]
    gen = torch.Generator().manual_seed(0)
    np.testing.assert_allclose(jitter_boxes(boxes, 0.0, gen)[0], boxes[0])
    moved = jitter_boxes(boxes, 1.0, gen)[0]
    assert np.abs(moved - boxes[0]).max() > 0.05


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda v, g: gaussian_blur(v, -1.0), "sigma"),
        (lambda v, g: add_noise(v, -0.1, g), "std"),
        (lambda v, g: shuffle_frames(v, 1.5, g), "fraction"),
        (lambda v, g: darken(v, 2.0), "factor"),
        (lambda v, g: swap_labels(["dusk"], 0.5, TIME_OF_DAY, g), "dusk"),
    ],
)
def test_bad_strengths_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(1, 2, 3, 8, 8), torch.Generator().manual_seed(0))
