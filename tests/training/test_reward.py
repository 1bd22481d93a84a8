"""Reward heads: a few steps on a latent cache of real world clips (events + ego speed)."""

import pytest
import torch

from drivesim.model_folder import load_stage
from drivesim.rollout.reward_model import RewardModel, RewardModelConfig
from drivesim.training.reward import RewardTrainConfig, train
from tests.training._latent_cache import make_tiny_latent_cache


def test_reward_model_shapes_and_bad_input():
    m = RewardModel(RewardModelConfig(channels=16))
    p = m(torch.randn(3, 2, 4, 8, 16))
    assert p.collision.shape == (3,) and bool((p.speed >= 0).all())
    try:
        m(torch.randn(3, 3, 4, 8, 16))
    except ValueError as e:
        assert "(b, 2, c, h, w)" in str(e)
    else:
        raise AssertionError("expected ValueError")


def _cache(root):
    return make_tiny_latent_cache(root, 2)


def test_reward_training_learns_speed_and_resumes(tmp_path):
    torch.set_num_threads(1)
    cache = _cache(tmp_path)

    def cfg(steps):
        return RewardTrainConfig(
            latents=str(cache), run_dir=str(tmp_path / "run"), model_dir=str(tmp_path / "model"),
            model=RewardModelConfig(channels=16), batch_size=16, max_steps=steps, checkpoint_every=10,
            log_every=5, val_split="train", device="cpu",
        )

    first = train(cfg(10))
    metrics = train(cfg(80))  # resumes at step 10
    rec = load_stage(tmp_path / "model", "reward")
    assert rec.extra["steps"] == 80 and rec.extra["stride"] == 4
    # 10 -> 80 steps: ~0.35 -> ~0.29 m/s here; a clear margin so CPU-kernel noise cannot flip it.
    assert metrics["speed_mae_mps"] < 0.95 * first["speed_mae_mps"]
    assert (tmp_path / "run" / "losses.png").exists()


def test_design_switches_keep_the_shapes_and_pose_is_read_only_when_asked():
    torch.manual_seed(0)
    z = torch.randn(3, 2, 4, 8, 16)
    plain = RewardModel(RewardModelConfig(channels=16))(z)
    assert plain.lateral_offset is None and plain.heading is None
    full = RewardModel(RewardModelConfig(channels=16, difference_input=True, pool_grid=(2, 4), pose=True))
    p = full(z)
    assert p.speed.shape == p.lateral_offset.shape == p.heading.shape == (3,)
    # pooled to a grid, the heads see where a feature is: moving it changes the reading
    shifted = full(torch.roll(z, shifts=8, dims=-1))
    assert not torch.allclose(shifted.lateral_offset, p.lateral_offset)
    assert full.trunk[0][0].in_channels == 3 * 4  # both latents and their difference
    for bad in ((0, 4), (2,)):
        try:
            RewardModelConfig(pool_grid=bad)
        except ValueError as e:
            assert "pool_grid" in str(e)
        else:
            raise AssertionError(f"expected ValueError for pool_grid={bad}")


def test_pose_heads_train_and_are_evaluated(tmp_path):
    torch.set_num_threads(1)
    cache = _cache(tmp_path)
    model = RewardModelConfig(channels=16, difference_input=True, pool_grid=(2, 4), pose=True)

    def cfg(steps):
        return RewardTrainConfig(
            latents=str(cache), run_dir=str(tmp_path / "run"), model_dir=str(tmp_path / "model"), model=model,
            batch_size=16, max_steps=steps, checkpoint_every=10, log_every=5, val_split="train", device="cpu",
        )

    first = train(cfg(10))
    metrics = train(cfg(80))
    for name in ("lateral_offset_mae_lanes", "lateral_offset_r2", "heading_mae_rad", "heading_r2", "speed_r2"):
        assert name in metrics
    assert metrics["lateral_offset_mae_lanes"] < 0.95 * first["lateral_offset_mae_lanes"]
    rec = load_stage(tmp_path / "model", "reward")
    assert rec.config["pose"] is True and list(rec.config["pool_grid"]) == [2, 4]


def test_the_pose_stage_is_written_beside_the_reward_heads_and_needs_pose(tmp_path):
    torch.set_num_threads(1)
    cache = _cache(tmp_path)
    model = RewardModelConfig(channels=16, difference_input=True, pool_grid=(2, 4), pose=True)
    common = dict(latents=str(cache), run_dir=str(tmp_path / "run"), model_dir=str(tmp_path / "model"),
                  batch_size=8, max_steps=3, checkpoint_every=3, val_split="train", device="cpu")
    train(RewardTrainConfig(**common, model=model, stage="pose"))
    assert (tmp_path / "model" / "pose.safetensors").is_file()
    assert not (tmp_path / "model" / "reward.safetensors").exists()
    assert load_stage(tmp_path / "model", "pose").extra["stride"] == 4
    with pytest.raises(ValueError, match="stage='pose' needs model.pose=true"):
        RewardTrainConfig(**common, model=RewardModelConfig(channels=16), stage="pose")
    with pytest.raises(ValueError, match=r"stage='events'; allowed: \['reward', 'pose'\]"):
        RewardTrainConfig(**common, model=model, stage="events")
