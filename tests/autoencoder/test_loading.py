import dataclasses

import pytest
import torch

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.loading import load_autoencoder, load_temporal_decoder
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder
from drivesim.training.checkpoint import save_stage

CFG = AutoencoderConfig(base_channels=8, channel_mults=(1, 2, 2, 2), num_res_blocks=1, decoder_res_blocks=1)


def test_model_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    ae = Autoencoder(CFG)
    save_stage(tmp_path, "autoencoder", ae, CFG, extra={"latent_scale": 1.7})
    td = TemporalDecoder.from_autoencoder(ae, TemporalDecoderConfig(temporal_levels=(1, 3), blend_mode="clamp"))
    config = {"autoencoder": dataclasses.asdict(CFG), "temporal": dataclasses.asdict(td.cfg)}
    save_stage(tmp_path, "temporal_decoder", td, config, extra={"latent_scale": 1.7})

    loaded = load_autoencoder(tmp_path)
    assert loaded.cfg == CFG and loaded.cfg.downsample_factor == 8 and float(loaded.latent_scale) == pytest.approx(1.7)
    x = torch.rand(1, 3, 32, 64) * 2 - 1
    assert torch.equal(loaded(x, sample=False).reconstruction, ae.eval()(x, sample=False).reconstruction)
    ltd = load_temporal_decoder(tmp_path)
    assert ltd.cfg.temporal_levels == (1, 3) and ltd.cfg.blend_mode == "clamp"
    z = torch.randn(1, 3, 4, 4, 8)
    assert torch.equal(ltd(z), td.eval()(z))


def test_missing_stage_and_bad_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match="autoencoder"):
        load_autoencoder(tmp_path)
    save_stage(tmp_path, "autoencoder", Autoencoder(CFG), {**dataclasses.asdict(CFG), "depth": 3})
    with pytest.raises(ValueError, match="depth"):
        load_autoencoder(tmp_path)
