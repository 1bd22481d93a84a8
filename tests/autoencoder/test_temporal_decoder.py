import pytest
import torch

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder

AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)


def _models(td_cfg: TemporalDecoderConfig | None = None) -> tuple[Autoencoder, TemporalDecoder]:
    torch.manual_seed(0)
    ae = Autoencoder(AE)
    ae.latent_scale.fill_(0.7)
    td = TemporalDecoder.from_autoencoder(ae, td_cfg or TemporalDecoderConfig(temporal_levels=(0, 1)))
    return ae, td


def _randomise_temporal(td: TemporalDecoder) -> None:
    torch.manual_seed(5)
    for block in td.temporal.values():
        for p in block.parameters():
            torch.nn.init.normal_(p, std=0.1)


def _image_decode(ae: Autoencoder, z: torch.Tensor) -> torch.Tensor:
    return ae.decode_video(z, scaled=False)


def test_starts_equal_to_image_decoder_and_alpha_one_is_exact():
    ae, td = _models()
    z = torch.randn(2, 5, 4, 4, 8)
    image = _image_decode(ae, z)
    assert torch.allclose(td(z), image, atol=1e-6)  # zero-initialised temporal blocks
    _randomise_temporal(td)
    assert not torch.allclose(td(z), image, atol=1e-3)
    td.set_alpha(1.0)
    assert torch.equal(td(z), image)
    assert set(td.alphas().values()) == {1.0}


def test_decode_flat_api_and_bad_num_frames():
    _, td = _models()
    z = torch.randn(6, 4, 4, 8)
    assert td.decode(z, num_frames=3).shape == (6, 3, 8, 16)  # f=2
    with pytest.raises(ValueError, match="num_frames"):
        td.decode(z, num_frames=4)


def test_chunked_decoding_equals_full_decoding_without_seam():
    _, td = _models()
    _randomise_temporal(td)
    assert td.receptive_radius == 6  # mid + 2 levels, 2 convs of 3 frames each
    z = torch.randn(1, 23, 4, 4, 8)
    full = td(z).clamp(-1, 1)
    chunked = td.decode_video(z * td.latent_scale, chunk_frames=8)  # scaled latents in
    assert chunked.shape == full.shape
    assert torch.allclose(chunked, full, atol=1e-5)
    pieces = list(td.iter_decode_video(z, chunk_frames=8, scaled=False))
    assert [p.shape[1] for p in pieces] == [8, 8, 7]
    # Too little context changes frames near chunk borders: the default overlap is what avoids it.
    short = td.decode_video(z, chunk_frames=8, overlap=0, scaled=False)
    assert not torch.allclose(short[:, 7:9], full[:, 7:9], atol=1e-4)


def test_invalid_temporal_config():
    with pytest.raises(ValueError, match="temporal_levels"):
        TemporalDecoder(AE, TemporalDecoderConfig(temporal_levels=(0, 5)))
    with pytest.raises(ValueError, match="blend_mode"):
        TemporalDecoderConfig(blend_mode="max")
    with pytest.raises(ValueError, match="temporal_kernel"):
        TemporalDecoderConfig(temporal_kernel=(2, 3, 3))
