"""`FrameCodec`: single frames <-> scaled latents; chunking a call (`max_frames`) changes no frame."""

import pytest
import torch

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.world_model import load


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.set_num_threads(1)
    return load(build_random_model(tmp_path_factory.mktemp("model")))


@pytest.mark.parametrize("with_temporal_decoder", [True, False])
def test_chunked_calls_give_the_frames_of_one_call(world, with_temporal_decoder):
    decoder = world.temporal_decoder if with_temporal_decoder else None
    one, chunked = FrameCodec(world.autoencoder, decoder), FrameCodec(world.autoencoder, decoder, max_frames=2)
    calls = []
    encode = world.autoencoder.encode
    world.autoencoder.encode = lambda x: calls.append(x.shape[0]) or encode(x)
    try:
        frames = torch.rand(5, 3, 32, 64) * 2 - 1
        z1, z2 = one.encode(frames), chunked.encode(frames)
    finally:
        del world.autoencoder.encode
    assert calls == [5, 2, 2, 1] and z1.shape[0] == 5
    torch.testing.assert_close(z1, z2, rtol=1e-5, atol=1e-5)
    x1, x2 = one.decode(z1), chunked.decode(z1)
    assert x1.shape == (5, 3, 32, 64)
    torch.testing.assert_close(x1, x2, rtol=1e-5, atol=1e-5)


def test_bad_input_is_refused(world):
    with pytest.raises(ValueError, match="max_frames=-1"):
        FrameCodec(world.autoencoder, max_frames=-1)
    codec = FrameCodec(world.autoencoder)
    with pytest.raises(ValueError, match=r"\(n, C, h, w\)"):
        codec.decode(torch.zeros(1, 2, 4, 8, 16))
    with pytest.raises(ValueError, match=r"\(n, 3, H, W\)"):
        codec.encode(torch.zeros(2, 4, 32, 64))
