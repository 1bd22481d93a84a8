"""The pixel-space upsampler, its temporal version and chunked sampling (tiny sizes, CPU)."""

import pytest
import torch

from drivesim.diffusion.upsampler import Upsampler, UpsamplerConfig, upsample_bilinear
from drivesim.diffusion.upsampler_temporal import TemporalUpsampler, TemporalUpsamplerConfig
from drivesim.sampling.upsample import plan_chunks, upsample_video


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny ops: one thread avoids OpenMP spin-waiting on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-zero weights everywhere (zero-initialised heads would hide every dependence)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("raw"):  # AlphaBlender logits keep their value
                continue
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _image_model(seed: int = 0) -> Upsampler:
    torch.manual_seed(seed)
    model = Upsampler(UpsamplerConfig.tiny())
    _randomise(model, seed)
    return model.eval()


def _temporal_model(seed: int = 0, **overrides: object) -> TemporalUpsampler:
    values: dict[str, object] = {"temporal_levels": (0, 1)}  # the tiny UNet has two levels
    values.update(overrides)
    model = TemporalUpsampler(_image_model(seed), TemporalUpsamplerConfig(**values))  # type: ignore[arg-type]
    _randomise(model.sites, seed + 1)
    return model.eval()


def _inputs(b: int, t: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, t, 3, h, w, generator=g)
    cond = torch.randn(b, t, 3, h, w, generator=g)
    return z, cond, torch.randint(0, 1000, (b,), generator=g), torch.randint(0, 250, (b,), generator=g)


def test_shapes_of_image_and_video_paths() -> None:
    model = _image_model()
    z, cond, tau, level = _inputs(2, 3, 16, 32)
    assert model(z[:, 0], tau, cond[:, 0], level).shape == (2, 3, 16, 32)
    assert model.forward_video(z, tau, cond, level).shape == (2, 3, 3, 16, 32)
    low = torch.rand(2, 3, 3, 4, 8) * 2 - 1
    noise = torch.randn(2, 3, 3, 16, 32)
    assert model.augment(low, level, noise).shape == (2, 3, 3, 16, 32)
    assert upsample_bilinear(low, 4).shape == (2, 3, 3, 16, 32)
    temporal = _temporal_model()
    assert temporal.forward_video(z, tau, cond, level).shape == (2, 3, 3, 16, 32)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 3, 10, 32), tau[:1], torch.randn(1, 3, 10, 32), level[:1])
    with pytest.raises(ValueError, match="noise_level"):
        model(z[:, 0], tau, cond[:, 0], torch.tensor([0, 5000]))


def test_noise_augmentation_level_reaches_the_model() -> None:
    model = _image_model()
    z, cond, tau, _ = _inputs(1, 1, 16, 32)
    out_low = model(z[:, 0], tau, cond[:, 0], torch.tensor([0]))
    out_high = model(z[:, 0], tau, cond[:, 0], torch.tensor([200]))
    assert (out_low - out_high).abs().max() > 1e-3  # tau_gamma enters through its embedding
    # and through Eq. (5): the condition itself is noised more at a higher level
    low = torch.rand(1, 3, 4, 8) * 2 - 1
    noise = torch.randn(1, 3, 16, 32)
    up = upsample_bilinear(low, 4)
    assert torch.allclose(model.augment(low, torch.tensor([0]), noise), up, atol=0.06)  # sigma_0 = 0.01
    err_small = (model.augment(low, torch.tensor([10]), noise) - up).abs().mean()
    err_large = (model.augment(low, torch.tensor([200]), noise) - up).abs().mean()
    assert err_large > 3 * err_small


def test_patch_weights_run_on_full_frames() -> None:
    """Fully convolutional: the same weights run at patch size and at whole-frame size."""
    model = _image_model()
    full = upsample_video(model, torch.rand(1, 2, 3, 8, 16) * 2 - 1, 2, torch.Generator().manual_seed(0))
    patch = upsample_video(model, torch.rand(1, 2, 3, 4, 4) * 2 - 1, 2, torch.Generator().manual_seed(0))
    assert full.shape == (1, 2, 3, 32, 64) and patch.shape == (1, 2, 3, 16, 16)
    assert torch.isfinite(full).all() and full.abs().max() <= 1.0


def test_alpha_one_equals_frame_by_frame_model() -> None:
    temporal = _temporal_model(temporal_levels=(0, 1), kernel_size=(3, 3, 3))
    image = temporal.image_model
    z, cond, tau, level = _inputs(2, 4, 16, 32, seed=3)
    frame_wise = image.forward_video(z, tau, cond, level)
    assert (temporal.forward_video(z, tau, cond, level) - frame_wise).abs().max() > 1e-4  # mixes frames now
    temporal.set_alpha(1.0)
    assert torch.equal(temporal.forward_video(z, tau, cond, level), frame_wise)


def test_temporal_layers_mix_frames_and_spatial_weights_are_frozen() -> None:
    temporal = _temporal_model()
    z, cond, tau, level = _inputs(1, 4, 16, 32, seed=4)
    base = temporal.forward_video(z, tau, cond, level)
    cond2 = cond.clone()
    cond2[:, 3] += 1.0  # change only the last frame's condition
    moved = temporal.forward_video(z, tau, cond2, level)
    assert (moved[:, 2] - base[:, 2]).abs().max() > 1e-5  # frame 2 sees frame 3's low-res
    assert all(not p.requires_grad for p in temporal.image_model.parameters())
    assert temporal.temporal_parameters() and all(p.requires_grad for p in temporal.temporal_parameters())


def test_plan_chunks_covers_every_frame_once() -> None:
    chunks = plan_chunks(11, 4, 1)
    new = [f for c in chunks for f in range(c.start + c.known, c.stop)]
    assert new == list(range(11))
    assert all(c.stop - c.start <= 4 for c in chunks) and chunks[0].known == 0
    assert all(c.known == 1 for c in chunks[1:])
    with pytest.raises(ValueError, match="overlap"):
        plan_chunks(5, 2, 2)


def test_frame_by_frame_sampling_does_not_depend_on_chunking() -> None:
    model = _image_model()
    low = torch.rand(1, 5, 3, 4, 8) * 2 - 1
    whole = upsample_video(model, low, 3, torch.Generator().manual_seed(7), chunk_frames=5)
    chunked = upsample_video(model, low, 3, torch.Generator().manual_seed(7), chunk_frames=2, overlap=1)
    assert whole.shape == (1, 5, 3, 16, 32)
    assert torch.allclose(whole, chunked, atol=1e-6)
    other_level = upsample_video(model, low, 3, torch.Generator().manual_seed(7), tau_gamma=200, chunk_frames=5)
    assert (other_level - whole).abs().max() > 1e-3


def test_temporal_sampling_in_overlapping_chunks() -> None:
    model = _temporal_model()
    low = torch.rand(1, 7, 3, 4, 8) * 2 - 1
    out = upsample_video(model, low, 2, torch.Generator().manual_seed(1), chunk_frames=3, overlap=1)
    again = upsample_video(model, low, 2, torch.Generator().manual_seed(1), chunk_frames=3, overlap=1)
    assert out.shape == (1, 7, 3, 16, 32) and torch.isfinite(out).all()
    assert torch.equal(out, again)  # all randomness from the generator
    with pytest.raises(ValueError, match="low_res"):
        upsample_video(model, low[0], 2, torch.Generator())
    with pytest.raises(ValueError, match="tau_gamma"):
        upsample_video(model, low, 2, torch.Generator(), tau_gamma=1000)
