import math

import torch

from drivesim.autoencoder.losses import (
    adaptive_gan_weight,
    hinge_discriminator_loss,
    image_gradients,
    reconstruction_loss,
    temporal_difference_loss,
)
from drivesim.autoencoder.metrics import flicker, psnr, ssim


def test_reconstruction_terms():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert float(reconstruction_loss(x, x, gradient_weight=1.0)) == 0.0
    assert math.isclose(float(reconstruction_loss(x + 0.1, x)), 0.1, rel_tol=1e-5)
    # A constant offset has no image gradient; a ramp has a constant one (central difference over 2 px).
    assert float(reconstruction_loss(x + 0.1, x, 1.0)) < 0.1 + 1e-5
    ramp = torch.linspace(0, 1, 8).repeat(1, 1, 8, 1)
    assert torch.allclose(image_gradients(ramp)[0, 0, :, 1:-1], torch.full((8, 6), 2 / 7), atol=1e-6)


def test_temporal_difference_and_flicker():
    video = torch.rand(1, 4, 3, 6, 6) * 2 - 1
    assert float(temporal_difference_loss(video + 0.2, video)) < 1e-6  # a static error does not flicker
    noisy = video.clone()
    noisy[:, 1] += 0.2
    assert float(temporal_difference_loss(noisy, video)) > 0.05
    assert float(flicker(video.clamp(-0.5, 0.5) + 0.0, video.clamp(-0.5, 0.5))[0]) == 0.0
    assert float(flicker(noisy.clamp(-0.5, 0.5), video.clamp(-0.5, 0.5))[0]) > 1.0


def test_psnr_ssim_values():
    x = torch.zeros(1, 3, 16, 16)
    assert math.isclose(float(psnr(x + 0.02, x)[0]), 10 * math.log10(4 / 0.0004), rel_tol=1e-5)
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(ssim(y, y), torch.ones(2), atol=1e-5)
    assert float(ssim(-y, y).mean()) < 0.5


def test_hinge_and_adaptive_weight():
    assert float(hinge_discriminator_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(hinge_discriminator_loss(torch.zeros(4), torch.zeros(4))) == 1.0
    w = torch.ones(3, requires_grad=True)
    rec = (w * 2.0).sum()
    gan = (w * 0.5).sum()
    weight = adaptive_gan_weight(rec, gan, w)
    assert math.isclose(float(weight), 2 * math.sqrt(3) / (0.5 * math.sqrt(3) + 1e-4), rel_tol=1e-5)
    assert not weight.requires_grad
