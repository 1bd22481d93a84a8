"""Frame-independent latent perturbations (drivesim/autoencoder/latent_noise.py)."""

import pytest
import torch

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig
from drivesim.autoencoder.latent_noise import LatentNoiseConfig, frame_noise, perturb_latents
from drivesim.autoencoder.model import Autoencoder
from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig, TemporalDecoderTrainer
from drivesim.training.temporal_decoder_data import encode_clips


def _z(b: int = 4, t: int = 6) -> torch.Tensor:
    return torch.randn(b, t, 4, 16, 32, generator=torch.Generator().manual_seed(1))


def test_off_by_default_returns_the_latents_unchanged():
    z = _z()
    assert perturb_latents(z, 0.5, LatentNoiseConfig(), torch.Generator().manual_seed(0)) is z
    assert perturb_latents(z, 0.5, LatentNoiseConfig(max_std=0.3, prob=0.0), torch.Generator()) is z


def test_fixed_level_has_that_std_in_scaled_units_and_differs_per_frame():
    z = _z(b=2, t=8)
    scale = 0.25
    level = torch.tensor([0.0, 0.2])
    out = perturb_latents(z, scale, LatentNoiseConfig(max_std=1.0), torch.Generator().manual_seed(0), level)
    assert torch.equal(out[0], z[0])  # level 0: clean
    delta = (out[1] - z[1]) * scale  # the noise in scaled-latent units
    assert float(delta.std()) == pytest.approx(0.2, rel=0.05)
    assert not torch.allclose(delta[0], delta[1])  # each frame its own noise
    # same generator seed, same noise
    again = perturb_latents(z, scale, LatentNoiseConfig(max_std=1.0), torch.Generator().manual_seed(0), level)
    assert torch.equal(out, again)


def test_drawn_levels_stay_within_max_std_and_prob_leaves_clips_clean():
    z = torch.zeros(64, 2, 4, 8, 8)
    out = perturb_latents(z, 1.0, LatentNoiseConfig(max_std=0.1, prob=0.5), torch.Generator().manual_seed(3))
    stds = out.flatten(1).std(dim=1)
    clean = int((stds == 0).sum())
    assert 16 <= clean <= 48  # about half of 64 clips untouched
    assert float(stds.max()) < 0.1 * 1.2


def test_lowres_noise_is_unit_variance_and_smoother_in_space():
    g = torch.Generator().manual_seed(0)
    white = frame_noise((8, 4, 4, 16, 32), 1, g)
    smooth = frame_noise((8, 4, 4, 16, 32), 4, g)
    assert smooth.shape == white.shape
    assert float(smooth.std()) == pytest.approx(1.0, rel=0.02)

    def neighbour_corr(x: torch.Tensor) -> float:
        a, b = x[..., :, :-1].flatten(), x[..., :, 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert neighbour_corr(white) < 0.1 < 0.6 < neighbour_corr(smooth)


def test_bad_config_and_level_shape_are_named():
    with pytest.raises(ValueError, match="max_std"):
        LatentNoiseConfig(max_std=-0.1)
    with pytest.raises(ValueError, match="lowres_factor"):
        LatentNoiseConfig(lowres_factor=0)
    with pytest.raises(ValueError, match="prob"):
        LatentNoiseConfig(prob=1.5)
    with pytest.raises(ValueError, match="one per clip"):
        perturb_latents(_z(b=2), 1.0, LatentNoiseConfig(max_std=0.1), torch.Generator(), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(b, t, c, h, w\)"):
        perturb_latents(torch.zeros(2, 4, 8, 8), 1.0, LatentNoiseConfig(max_std=0.1), torch.Generator())


@pytest.mark.parametrize("max_std", [0.0, 0.3])
def test_temporal_decoder_step_decodes_perturbed_latents_against_clean_targets(max_std):
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1))
    cfg = TemporalDecoderTrainConfig(
        temporal=TemporalDecoderConfig(temporal_levels=(0,)),
        discriminator=DiscriminatorConfig(base_channels=4, num_layers=2),
        latent_noise=LatentNoiseConfig(max_std=max_std),
        sample_posterior=False,
    )
    trainer = TemporalDecoderTrainer(cfg, ae)
    video = torch.rand(2, 4, 3, 16, 32) * 2 - 1
    seen: list[torch.Tensor] = []
    forward = trainer.decoder_net.forward

    def capture(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.detach().clone())
        return forward(z)

    trainer.decoder_net.forward = capture  # type: ignore[method-assign]
    clean = encode_clips(ae, video)
    trainer.step(video, 0, torch.Generator().manual_seed(0))
    assert torch.equal(seen[0], clean) == (max_std == 0.0)
    assert torch.equal(encode_clips(ae, video), clean)  # the encoder and its latents do not move
