"""Stage-1 and stage-2 training loops on a tiny synthetic dataset (real MP4 files)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig
from drivesim.autoencoder.loading import load_autoencoder, load_temporal_decoder
from drivesim.autoencoder.model import Autoencoder
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import MANIFEST_NAME, write_manifest
from drivesim.training.autoencoder import AutoencoderTrainConfig
from drivesim.training.autoencoder import train as train_autoencoder
from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig, TemporalDecoderTrainer
from drivesim.training.temporal_decoder import train as train_temporal
from drivesim.training.temporal_decoder_data import encode_clips

TINY_AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
TINY_D = DiscriminatorConfig(base_channels=4, num_layers=2)


def _frames(seed: int, t: int = 12, h: int = 16, w: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, 1, 3))
    out = []
    for i in range(t):
        f = np.full((h, w, 3), base, np.uint8)
        x = (2 * i + seed) % (w - 6)
        f[4:10, x : x + 6] = 255 - base
        out.append(f)
    return out


def make_dataset(root: Path) -> Path:
    records = []
    for i, split in enumerate(["train", "train", "val"]):
        labels = ClipLabels(id=f"c{i}", fps=30.0, time_of_day="day", crowdedness="low", split=split, source="test")
        records.append(write_clip(root, labels, _frames(i)))
    write_manifest(root / MANIFEST_NAME, records)
    return root


def _ae_cfg(tmp: Path, name: str, dataset: Path, **kw) -> AutoencoderTrainConfig:
    base = dict(
        dataset=str(dataset),
        run_dir=str(tmp / name / "run"),
        model_dir=str(tmp / name / "model"),
        model=TINY_AE,
        discriminator=TINY_D,
        height=16,
        width=32,
        batch_size=2,
        max_steps=4,
        warmup_steps=1,
        disc_start=2,
        checkpoint_every=2,
        eval_every=2,
        log_every=1,
        val_frames=4,
        scale_frames=8,
        num_threads=1,
    )
    base.update(kw)
    return AutoencoderTrainConfig(**base)


class Interrupt(Exception):
    pass


def _interrupt_at(stop: int):
    def hook(step: int) -> None:
        if step == stop:
            raise Interrupt

    return hook


def test_autoencoder_resume_continues_from_the_same_step(tmp_path):
    dataset = make_dataset(tmp_path / "ds")
    straight = train_autoencoder(_ae_cfg(tmp_path, "a", dataset))
    cfg_b = _ae_cfg(tmp_path, "b", dataset)
    with pytest.raises(Interrupt):
        train_autoencoder(cfg_b, after_step=_interrupt_at(3))  # checkpoint at 2, dies during step 3
    resumed_steps: list[int] = []
    resumed = train_autoencoder(cfg_b, after_step=resumed_steps.append)
    assert resumed_steps == [3, 4] and resumed.steps == straight.steps == 4
    a = load_file(str(tmp_path / "a" / "model" / "autoencoder.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "autoencoder.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    run = tmp_path / "b" / "run"
    def steps(folder):
        return [json.loads(line)["step"] for line in (folder / "losses.jsonl").read_text().splitlines()]

    assert steps(run) == steps(tmp_path / "a" / "run")  # same rows as uninterrupted: none repeated or lost
    assert (run / "losses.png").stat().st_size > 0
    model = load_autoencoder(tmp_path / "b" / "model")
    assert float(model.latent_scale) == pytest.approx(resumed.latent_scale)
    assert resumed.latent_scale > 0 and np.isfinite(resumed.val_psnr)


@pytest.mark.parametrize("train_spatial", [False, True])
def test_temporal_training_keeps_encoder_and_latents_fixed(train_spatial):
    torch.manual_seed(0)
    ae = Autoencoder(TINY_AE)
    cfg = TemporalDecoderTrainConfig(
        temporal=TemporalDecoderConfig(temporal_levels=(0, 1)),
        discriminator=TINY_D,
        disc_start=0,
        lr=1e-2,
        train_spatial=train_spatial,
    )
    trainer = TemporalDecoderTrainer(cfg, ae)
    video = torch.rand(2, 4, 3, 16, 32) * 2 - 1
    encoder_before = {k: v.clone() for k, v in ae.state_dict().items()}
    latents_before = encode_clips(ae, video)
    spatial_before = {k: v.clone() for k, v in trainer.decoder.decoder.state_dict().items()}
    temporal_before = {k: v.clone() for k, v in trainer.decoder.temporal.state_dict().items()}
    for step in range(2):
        losses = trainer.step(video, step, torch.Generator().manual_seed(step))
    assert losses.gan_weight > 0 and losses.disc > 0
    for key, value in ae.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    assert torch.equal(encode_clips(ae, video), latents_before)
    spatial_same = [torch.equal(v, spatial_before[k]) for k, v in trainer.decoder.decoder.state_dict().items()]
    assert all(spatial_same) != train_spatial
    changed = [k for k, v in trainer.decoder.temporal.state_dict().items() if not torch.equal(v, temporal_before[k])]
    assert changed


def test_temporal_decoder_training_resumes_and_exports(tmp_path):
    dataset = make_dataset(tmp_path / "ds")
    ae_result = train_autoencoder(_ae_cfg(tmp_path, "ae", dataset, max_steps=2))
    cfg = TemporalDecoderTrainConfig(
        dataset=str(dataset),
        run_dir=str(tmp_path / "td_run"),
        model_dir=str(ae_result.model_dir),
        temporal=TemporalDecoderConfig(temporal_levels=(0,)),
        discriminator=TINY_D,
        height=16,
        width=32,
        num_frames=4,
        batch_size=1,
        max_steps=3,
        disc_start=1,
        checkpoint_every=1,
        eval_every=2,
        log_every=1,
        val_clips=1,
        val_frames=6,
        num_threads=1,
    )
    with pytest.raises(Interrupt):
        train_temporal(cfg, after_step=_interrupt_at(2))
    steps: list[int] = []
    result = train_temporal(cfg, after_step=steps.append)
    assert steps == [3] and result.steps == 3
    decoder = load_temporal_decoder(ae_result.model_dir)
    assert float(decoder.latent_scale) == pytest.approx(ae_result.latent_scale)
    assert set(decoder.alphas()) == {"mid", "level0"}
    assert load_autoencoder(ae_result.model_dir).cfg == TINY_AE  # stage 1 is still there
    assert np.isfinite(result.temporal_decoder.flicker) and result.image_decoder.psnr > 0
