"""Upsampler training: world pairs, patches, loss going down, both stages end to end with resume."""

import json
from pathlib import Path

import pytest
import torch

from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.upsampler import UpsamplerConfig, load_upsampler, upsample_bilinear
from drivesim.diffusion.upsampler_temporal import TemporalUpsamplerConfig, load_temporal_upsampler
from drivesim.sampling.upsample import upsample_video
from drivesim.training.upsampler import UpsamplerTrainConfig, UpsamplerTrainer
from drivesim.training.upsampler import train as train_image
from drivesim.training.upsampler_data import (
    WorldPairs,
    WorldPairsConfig,
    crop_upsampled,
    render_pairs,
    sample_patches,
)
from drivesim.training.upsampler_temporal import UpsamplerTemporalTrainConfig
from drivesim.training.upsampler_temporal import train as train_temporal

TINY = UpsamplerConfig.tiny(max_noise_level=100)
DATA = WorldPairsConfig(height=16, width=32, num_episodes=2, frames_per_episode=3, frame_stride=2, warmup_steps=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny ops: one thread avoids OpenMP spin-waiting on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs() -> WorldPairs:
    return render_pairs(DATA, scale=4, first_seed=0, progress=False)


def test_world_pairs_are_the_same_state_at_two_sizes(pairs: WorldPairs) -> None:
    assert pairs.low.shape == (2, 3, 3, 16, 32) and pairs.high.shape == (2, 3, 3, 64, 128)
    assert pairs.low.dtype == torch.uint8 and pairs.scale == 4
    assert torch.equal(render_pairs(DATA, scale=4, first_seed=0, progress=False).high, pairs.high)  # deterministic
    low, high = pairs.video()
    assert (high[:, 1] - high[:, 0]).abs().mean() > 1e-3  # the world moves between kept frames
    big = render_pairs(WorldPairsConfig(num_episodes=2, frames_per_episode=1, warmup_steps=2), 4, 0, progress=False)
    low, high = big.video()  # 64x128 and 256x512
    down = torch.nn.functional.interpolate(high[:, 0], size=(64, 128), mode="area")  # (2, 3, 64, 128)
    same = (down - low[:, 0]).abs().mean()
    other = (down - low[:, 0].flip(0)).abs().mean()  # the other episode's low-res frame
    assert same < 0.7 * other  # same content at another resolution


def test_patch_condition_equals_crop_of_whole_frame_upsampling(pairs: WorldPairs) -> None:
    low, _ = pairs.video()
    whole = upsample_bilinear(low[0, 0], 4)  # (3, 64, 128)
    for top, left in [(0, 0), (32, 96), (16, 40)]:
        crop = crop_upsampled(low[0, 0], top, left, 32, 4)
        assert torch.allclose(crop, whole[:, top : top + 32, left : left + 32], atol=1e-6)
    batch = sample_patches(pairs, 3, 2, 32, torch.Generator().manual_seed(0))
    assert batch.up.shape == batch.high.shape == (3, 2, 3, 32, 32)
    with pytest.raises(ValueError, match="patch_size"):
        sample_patches(pairs, 1, 1, 30, torch.Generator())


def test_a_few_training_steps_reduce_the_loss(tmp_path: Path, pairs: WorldPairs) -> None:
    cfg = UpsamplerTrainConfig(
        run_dir=str(tmp_path), model_dir=str(tmp_path), model=TINY, data=DATA, patch_size=32, batch_size=4,
        lr=5e-3, warmup_steps=1, max_steps=30,
    )
    trainer = UpsamplerTrainer(cfg)
    fixed = sample_patches(pairs, 16, 1, 32, torch.Generator().manual_seed(123))
    level = torch.full((16,), 10)

    def held_loss() -> float:
        model = trainer.model.eval()
        cond = model.noise_augment(fixed.up[:, 0], level, torch.zeros_like(fixed.up[:, 0]))
        with torch.no_grad():
            return float(
                diffusion_loss(
                    lambda z, tau, c: model(z, tau, c, level),
                    fixed.high[:, 0], cond, model.schedule, torch.Generator().manual_seed(5), model.target,
                ).loss
            )

    before = held_loss()
    for step in range(30):
        trainer.step(pairs, step, torch.Generator().manual_seed(step))
    after = held_loss()
    assert after < 0.92 * before, (before, after)  # seeds 0-2 reach 0.86-0.88


def test_both_stages_train_resume_export_and_upsample_whole_frames(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    image_cfg = dict(
        run_dir=str(tmp_path / "image"), model_dir=str(model_dir), model=TINY, data=DATA, val_episodes=1,
        val_frames=1, patch_size=32, batch_size=2, eval_steps=2, eval_every=2, checkpoint_every=2, log_every=1,
    )
    first = train_image(UpsamplerTrainConfig(max_steps=2, **image_cfg))
    second = train_image(UpsamplerTrainConfig(max_steps=4, **image_cfg))  # resumes at step 2
    assert (first.steps, second.steps) == (2, 4)
    rows = [json.loads(line) for line in (tmp_path / "image" / "losses.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == [1, 2, 3, 4]  # one curve: no repeated segment, no row lost at the resume point
    image = load_upsampler(model_dir)

    temporal_cfg = UpsamplerTemporalTrainConfig(
        run_dir=str(tmp_path / "temporal"), model_dir=str(model_dir),
        temporal=TemporalUpsamplerConfig(temporal_levels=(0, 1)), data=DATA, num_frames=3, val_episodes=1,
        val_frames=3, patch_size=32, batch_size=1, max_steps=2, eval_steps=2, eval_every=2, chunk_frames=2,
        chunk_overlap=1,
    )
    result = train_temporal(temporal_cfg)
    assert result.steps == 2 and set(result.alphas) and result.temporal.flicker is not None
    video = load_temporal_upsampler(model_dir)
    assert torch.equal(video.image_model.conv_in.weight, image.conv_in.weight)  # spatial weights frozen

    # patch-trained weights upsample whole frames; alpha = 1 gives back the frame-by-frame model
    low = torch.rand(1, 3, 3, 16, 32) * 2 - 1
    temporal_out = upsample_video(video, low, 2, torch.Generator().manual_seed(0), chunk_frames=3)
    assert temporal_out.shape == (1, 3, 3, 64, 128) and torch.isfinite(temporal_out).all()
    video.set_alpha(1.0)
    framewise = upsample_video(image, low, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(upsample_video(video, low, 2, torch.Generator().manual_seed(0), chunk_frames=3), framewise)
