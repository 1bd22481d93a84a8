"""Fixtures shared by the test modules."""

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Tiny models run fastest (and steadiest on a shared CPU) on one thread.

    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _make_latent_cache(root, num_clips: int):
    """A latent cache of `num_clips` 1-s synth clips (32x64) under `root`, encoded by a tiny random autoencoder."""
    from drivesim.autoencoder.config import AutoencoderConfig
    from drivesim.autoencoder.latent_cache import encode_dataset
    from drivesim.autoencoder.model import Autoencoder
    from drivesim.cli.main import main

    ds = root / "ds"
    synth = ["data", "synth", f"out={ds}", f"num_clips={num_clips}", "clip_seconds=1", "height=32", "width=64"]
    assert main(synth) == 0
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1))
    encode_dataset(ds, ae, root / "cache", height=32, width=64, splits=None)
    return root / "cache"


@pytest.fixture(scope="session")
def make_latent_cache():
    """`make_latent_cache(root, num_clips)` -> the cache folder (see `_make_latent_cache`)."""
    return _make_latent_cache
