import pytest
import torch
from torch.distributions import Normal, kl_divergence

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.distribution import DiagonalGaussian
from drivesim.autoencoder.losses import kl_loss
from drivesim.autoencoder.model import Autoencoder

TINY = {"base_channels": 8, "num_res_blocks": 1, "decoder_res_blocks": 1}


@pytest.mark.parametrize(("mults", "f"), [((1, 2, 2), 4), ((1, 2, 2, 2), 8)])
def test_shapes(mults, f):
    torch.manual_seed(0)
    cfg = AutoencoderConfig(channel_mults=mults, **TINY)
    assert cfg.downsample_factor == f
    model = Autoencoder(cfg)
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    out = model(x)
    assert out.latent.shape == (2, 4, 32 // f, 64 // f)
    assert out.posterior.mean.shape == (2, 4, 32 // f, 64 // f)
    assert out.reconstruction.shape == x.shape
    video = x[None].repeat(2, 1, 1, 1, 1)  # 2 videos of 2 frames
    z = model.encode_video(video, chunk_frames=3)
    assert z.shape == (2, 2, 4, 32 // f, 64 // f)
    assert model.decode_video(z).shape == video.shape


def test_posterior_sampling_is_seeded_and_mode_is_mean():
    model = Autoencoder(AutoencoderConfig(**TINY))
    x = torch.zeros(1, 3, 16, 16)
    a = model(x, generator=torch.Generator().manual_seed(3)).latent
    b = model(x, generator=torch.Generator().manual_seed(3)).latent
    assert torch.equal(a, b)
    assert torch.equal(model(x, sample=False).latent, model.encode(x).mean)


def test_kl_matches_closed_form():
    torch.manual_seed(0)
    moments = torch.randn(3, 8, 4, 5)
    post = DiagonalGaussian(moments)
    mean, logvar = moments.chunk(2, dim=1)
    expected = kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(dim=(1, 2, 3))
    assert torch.allclose(post.kl(), expected, atol=1e-4)
    assert torch.allclose(kl_loss(post, 100), expected.mean() / 100, atol=1e-6)
    assert torch.allclose(DiagonalGaussian(torch.zeros(1, 8, 2, 2)).kl(), torch.zeros(1))


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match="channel_mults"):
        AutoencoderConfig(channel_mults=())
    with pytest.raises(ValueError, match="base_channels"):
        AutoencoderConfig(base_channels=0)
    cfg = AutoencoderConfig(**TINY)
    model = Autoencoder(cfg)
    with pytest.raises(ValueError, match="divisible"):
        model.encode(torch.zeros(1, 3, 30, 64))
    with pytest.raises(ValueError, match="Decoder input"):
        model.decode(torch.zeros(1, 3, 8, 8))
    assert cfg.latent_size(64, 128) == (16, 32)
