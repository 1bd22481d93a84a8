"""Losses of autoencoder training: reconstruction, KL, hinge GAN, adaptive GAN weight.

All reconstruction terms are means over pixels. The KL term is the per-sample KL summed
over latent elements divided by the number of image elements per sample, so
`kl_weight` has the meaning it has in the LDM autoencoders (whose losses are sums over
elements, rec and KL alike).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from drivesim.autoencoder.distribution import DiagonalGaussian


def _sobel_kernels(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=device, dtype=dtype) / 4.0
    kernels = torch.stack([kx, kx.T])  # 2 3 3
    return kernels[:, None].repeat(channels, 1, 1, 1)  # (c 2) 1 3 3


def image_gradients(x: torch.Tensor) -> torch.Tensor:
    """Sobel x/y derivatives per channel: (b, c, H, W) -> (b, 2c, H, W)."""
    c = x.shape[1]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, _sobel_kernels(c, x.device, x.dtype), groups=c)  # b (c 2) H W


def reconstruction_loss(
    x_hat: torch.Tensor, x: torch.Tensor, gradient_weight: float = 0.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 on pixels plus `gradient_weight` * L1 on Sobel image gradients (sharpens edges), on
    (b, c, H, W) images. `weight` (b, 1, H, W), e.g. `box_masks.pixel_weights`, makes both terms
    weighted means over pixels (the same scale as unweighted; all ones gives the plain loss)."""
    if weight is not None and (
        weight.ndim != 4 or weight.shape[1] != 1 or weight.shape[2:] != x.shape[2:] or weight.shape[0] != x.shape[0]
    ):
        raise ValueError(f"weight must be (b, 1, H, W) for images {tuple(x.shape)}, got {tuple(weight.shape)}")

    def mean(err: torch.Tensor) -> torch.Tensor:
        return err.mean() if weight is None else (weight * err).mean() / weight.mean()

    loss = mean((x_hat - x).abs())
    if gradient_weight > 0:
        loss = loss + gradient_weight * mean((image_gradients(x_hat) - image_gradients(x)).abs())
    return loss


def kl_loss(posterior: DiagonalGaussian, image_elements: int) -> torch.Tensor:
    """Mean over the batch of KL(q(z|x) || N(0, I)) / image_elements."""
    return posterior.kl().mean() / float(image_elements)


def temporal_difference_loss(video_hat: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """L1 between frame-to-frame changes of (b, t, c, h, w) videos: penalises flicker."""
    if video.shape[1] < 2:
        raise ValueError(f"temporal_difference_loss needs >= 2 frames, got {video.shape[1]}")
    return ((video_hat[:, 1:] - video_hat[:, :-1]) - (video[:, 1:] - video[:, :-1])).abs().mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """0.5 * (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))])."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: -E[D(x_hat)]."""
    return -fake_logits.mean()


def adaptive_gan_weight(
    rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """LDM / VQGAN adaptive weight: ||grad rec|| / (||grad gan|| + 1e-4) at the decoder's last layer,
    clamped to [0, max_weight] and detached."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (gan_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()
