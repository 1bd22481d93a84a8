"""A tiny latent cache for training-stage tests (imported by test modules and _stage_script.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.latent_cache import encode_dataset
from drivesim.autoencoder.model import Autoencoder
from drivesim.cli.main import main


def make_tiny_latent_cache(root: Path, num_clips: int) -> Path:
    """`num_clips` 1-s synth clips (32x64) under root/ds, encoded by a tiny random autoencoder into root/cache."""
    ds = root / "ds"
    synth = ["data", "synth", f"out={ds}", f"num_clips={num_clips}", "clip_seconds=1", "height=32", "width=64"]
    assert main(synth) == 0
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1))
    encode_dataset(ds, ae, root / "cache", height=32, width=64, splits=None)
    return root / "cache"
