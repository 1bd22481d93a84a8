import pytest
import torch

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.context import (
    ContextEncoder,
    ContextSite,
    check_context_probs,
    context_condition,
    keyframe_mask,
    noise_context,
    prediction_mask,
    sample_num_context,
)
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.video_conditioning import VideoConditioning

pytestmark = pytest.mark.usefixtures("one_thread")



def test_num_context_frequencies_follow_p_s():
    probs = [0.2, 0.3, 0.5]
    s = sample_num_context(20000, probs, torch.Generator().manual_seed(0))
    assert s.shape == (20000,) and s.dtype == torch.long
    freq = torch.bincount(s, minlength=3).float() / s.numel()
    torch.testing.assert_close(freq, torch.tensor(probs), atol=0.015, rtol=0)
    assert torch.equal(s, sample_num_context(20000, probs, torch.Generator().manual_seed(0)))
    assert int(sample_num_context(100, [0.0, 1.0], torch.Generator()).min()) == 1


@pytest.mark.parametrize("probs", [[], [0.5, 0.6], [-0.1, 1.1]])
def test_bad_p_s_raises(probs):
    with pytest.raises(ValueError, match="context_probs"):
        check_context_probs(probs)


def test_prediction_mask():
    mask = prediction_mask(torch.tensor([0, 1, 2]), 5)
    assert mask.shape == (3, 5)
    assert mask.tolist() == [[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="num_context"):
        prediction_mask(torch.tensor([6]), 5)


def test_keyframe_mask():
    mask = keyframe_mask(2, 9, 4)
    assert mask.shape == (2, 9)
    assert mask[0].nonzero().flatten().tolist() == [0, 4, 8]
    assert keyframe_mask(1, 17, 4)[0].nonzero().flatten().tolist() == [0, 4, 8, 12, 16]
    for bad in (8, 3):
        with pytest.raises(ValueError, match="num_frames"):
            keyframe_mask(1, bad, 4)


def test_context_condition_is_masked_latents_plus_mask_plane():
    z = torch.randn(2, 4, 3, 5, 6)
    mask = prediction_mask(torch.tensor([1, 2]), 4)
    c = context_condition(z, mask)
    assert c.shape == (2, 4, 4, 5, 6)
    assert torch.equal(c[0, 0, :3], z[0, 0]) and torch.equal(c[1, 1, :3], z[1, 1])
    assert float(c[0, 1:, :3].abs().max()) == 0.0 and float(c[1, 2:, :3].abs().max()) == 0.0
    assert torch.equal(c[:, :, 3], mask[:, :, None, None].expand(2, 4, 5, 6))
    with pytest.raises(ValueError, match="context mask"):
        context_condition(z, torch.full((2, 4), 0.5))


def test_noise_context_uses_the_schedule():
    schedule = NoiseSchedule()
    z = torch.randn(3, 2, 4, 4, 4)
    tau = torch.tensor([0, 500, 999])
    noisy = noise_context(z, tau, schedule, torch.Generator().manual_seed(0))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisy, schedule.add_noise(z, eps, tau))
    assert float((noisy[0] - z[0]).abs().mean()) < 0.05 < float((noisy[2] - z[2]).abs().mean())


@torch.no_grad()
def test_context_encoder_shapes_and_zero_start():
    sites = [ContextSite(8, 0), ContextSite(16, 1), ContextSite(16, 1), ContextSite(8, 0)]
    enc = ContextEncoder(4, sites, hidden_channels=6)
    c = torch.randn(6, 5, 8, 16)
    out = enc(c)
    assert [tuple(o.shape) for o in out] == [(6, 8, 8, 16), (6, 16, 4, 8), (6, 16, 4, 8), (6, 8, 8, 16)]
    assert all(float(o.abs().max()) == 0.0 for o in out)
    torch.nn.init.normal_(enc.out[1].weight)
    assert float(enc(c)[1].abs().max()) > 0
    with pytest.raises(ValueError, match="ContextEncoder"):
        enc(torch.randn(6, 4, 8, 16))


def _cond(per_frame: bool) -> VideoConditioning:
    b, t = 2, 3
    rows = b * t if per_frame else b
    image = Conditioning(
        time_of_day=torch.zeros(rows, dtype=torch.long),
        crowdedness=torch.ones(rows, dtype=torch.long),
        boxes=torch.full((rows, 1, 4), 0.5),
        box_classes=torch.zeros(rows, 1, dtype=torch.long),
        box_mask=torch.ones(rows, 1, dtype=torch.bool),
    )
    mask = prediction_mask(torch.tensor([1, 2]), t)
    return VideoConditioning.create(
        b, t, (4, 2, 2), image=image, context_latents=torch.ones(b, t, 4, 2, 2) * mask[:, :, None, None, None],
        context_mask=mask, actions=torch.full((b, t, 2), 0.5),
    )


@pytest.mark.parametrize("per_frame", [False, True])
def test_video_conditioning_null_and_cat(per_frame):
    cond = _cond(per_frame)
    assert cond.num_context.tolist() == [1, 2]
    which = torch.tensor([True, False])
    part = cond.null_where(["context", "actions", "time_of_day"], which)
    assert part.num_context.tolist() == [0, 2] and float(part.context_latents[0].abs().max()) == 0.0
    assert part.actions_given.tolist() == [False, True]
    rows = 3 if per_frame else 1
    assert part.image.time_of_day.tolist() == [-1] * rows + [0] * rows
    assert part.image.crowdedness.tolist() == [1] * (2 * rows)
    both = VideoConditioning.cat([cond, cond.nulled(["context", "boxes"])])
    assert both.batch_size == 4 and both.num_context.tolist() == [1, 2, 0, 0]
    assert both.image.boxes_given.tolist() == [True] * (2 * rows) + [False] * (2 * rows)
    with pytest.raises(ValueError, match="not allowed"):
        cond.nulled(["weather"])


@pytest.mark.parametrize("per_frame", [False, True])
def test_video_conditioning_contrast_swaps_one_label_and_keeps_the_rest(per_frame):
    cond = _cond(per_frame)  # time of day "day" (0), crowdedness "medium" (1)
    swapped = cond.contrasted("crowdedness")
    rows = 6 if per_frame else 2
    assert swapped.image.crowdedness.tolist() == [0] * rows  # medium against low
    assert swapped.image.time_of_day.tolist() == [0] * rows
    assert torch.equal(swapped.context_latents, cond.context_latents) and torch.equal(swapped.actions, cond.actions)
    assert cond.contrasted("time_of_day").image.time_of_day.tolist() == [1] * rows  # day against night
    assert cond.nulled(["crowdedness"]).contrasted("crowdedness").image.crowdedness.tolist() == [-1] * rows
    with pytest.raises(ValueError, match="contrast of 'boxes'"):
        cond.contrasted("boxes")


def test_video_conditioning_create_defaults_and_validation():
    cond = VideoConditioning.create(2, 4, (4, 8, 16))
    assert cond.num_context.tolist() == [0, 0] and cond.actions_given.tolist() == [False, False]
    assert cond.frame_rate.tolist() == [-1, -1] and cond.image.batch_size == 2
    with pytest.raises(ValueError, match="context_latents"):
        VideoConditioning.create(2, 4, (4, 8, 16), context_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="image"):
        VideoConditioning.create(2, 4, (4, 8, 16), image=Conditioning.null(3))
    with pytest.raises(ValueError, match="actions"):
        VideoConditioning.create(2, 4, (4, 8, 16), actions=torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="NaN"):
        VideoConditioning.create(2, 4, (4, 8, 16), actions=torch.full((2, 4, 2), float("nan")))
