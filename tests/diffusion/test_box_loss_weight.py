"""Latent box masks and loss weights for the image LDM's box-weighted loss."""

import pytest
import torch

from drivesim.diffusion.box_loss_weight import latent_box_mask, latent_box_weights
from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig


def test_mask_marks_the_cells_a_box_overlaps_and_ignores_padding():
    boxes = torch.tensor([[[0.25, 0.5, 0.5, 0.75], [0.0, 0.0, 1.0, 1.0]], [[0.3, 0.1, 0.35, 0.2], [0, 0, 0, 0]]])
    given = torch.tensor([[True, False], [True, False]])
    mask = latent_box_mask(boxes, given, 4, 8)
    assert mask.shape == (2, 4, 8) and mask.dtype == torch.bool
    expected = torch.zeros(4, 8, dtype=torch.bool)
    expected[2:3, 2:4] = True  # rows [0.5, 0.75) -> row 2; columns [0.25, 0.5) -> 2, 3
    assert torch.equal(mask[0], expected)  # the full-frame box is padding
    assert mask[1].sum() == 1 and mask[1, 0, 2]  # a box smaller than a cell still marks its cell


def test_weights_and_errors():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5]]])
    w = latent_box_weights(boxes, torch.tensor([[True]]), 2, 2, 3.0)
    assert w.shape == (1, 1, 2, 2) and w.flatten().tolist() == [3.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="box_weight"):
        latent_box_weights(boxes, torch.tensor([[True]]), 2, 2, 0.5)
    with pytest.raises(ValueError, match=r"\(b, k, 4\)"):
        latent_box_mask(boxes[0], torch.tensor([True]), 2, 2)


def test_weighted_loss_counts_errors_under_boxes_more():
    schedule = NoiseSchedule(ScheduleConfig())
    x0 = torch.zeros(1, 2, 4, 8)
    boxes = torch.tensor([[[0.0, 0.0, 0.25, 0.5]]])
    weight = latent_box_weights(boxes, torch.tensor([[True]]), 4, 8, 5.0)
    tau = torch.tensor([500])

    def off_by_one(where: tuple[slice, slice]):
        def denoiser(z, t, cond):
            out = z / schedule.sigma(t).reshape(-1, 1, 1, 1)  # the exact eps for x0 = 0
            out[:, :, where[0], where[1]] += 1.0
            return out

        return denoiser

    def loss(denoiser, w):
        g = torch.Generator().manual_seed(0)
        return float(diffusion_loss(denoiser, x0, None, schedule, g, "eps", tau=tau, weight=w).loss)

    inside, outside = off_by_one((slice(0, 2), slice(0, 2))), off_by_one((slice(2, 4), slice(6, 8)))
    assert loss(inside, None) == pytest.approx(loss(outside, None), rel=1e-4)  # same error size, plain loss
    assert loss(inside, weight) == pytest.approx(5.0 * loss(outside, weight), rel=1e-4)
