"""Reward heads: a few steps on a latent cache of real world clips (events + ego speed)."""

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
