import numpy as np
import torch

from drivesim.eval.clip_probe import ClipProbeConfig
from drivesim.eval.probe_data import TRAIN_SEED_BASE, EpisodeConfig, render_episodes
from drivesim.training.probe_batches import mirror_clips, pair_targets, sample_clips


def test_pair_targets_average_to_the_window_targets():
    rng = np.random.default_rng(0)
    stride, frames = 3, 4
    span = (frames - 1) * stride + 1
    actions, speed = rng.normal(size=(span, 2)), rng.uniform(5, 30, span)
    pair_actions, pair_speed = pair_targets(actions, speed, stride)
    assert pair_actions.shape == (frames - 1, 2) and pair_speed.shape == (frames - 1,)
    np.testing.assert_allclose(pair_actions.mean(0), actions[1:].mean(0))  # the window's target, exactly
    np.testing.assert_allclose(pair_actions[1], actions[stride + 1 : 2 * stride + 1].mean(0))
    np.testing.assert_allclose(pair_speed[0], speed[:stride].mean())


def test_sampled_clips_carry_pair_targets_and_mirroring_negates_every_steer():
    eps = render_episodes(EpisodeConfig(height=32, width=64, num_frames=12, warmup_frames=4), TRAIN_SEED_BASE, 2)
    cfg = ClipProbeConfig(height=32, width=64, num_frames=4, frame_stride=2)
    batch = sample_clips(eps, np.random.default_rng(0), 3, cfg)
    assert batch.pair_actions.shape == (3, 3, 2) and batch.pair_speed.shape == (3, 3)
    torch.testing.assert_close(batch.pair_actions.mean(1), batch.actions)
    flipped = mirror_clips(batch, np.array([True, False, True]))
    torch.testing.assert_close(flipped.pair_actions[[0, 2], :, 0], -batch.pair_actions[[0, 2], :, 0])
    torch.testing.assert_close(flipped.pair_actions[1], batch.pair_actions[1])
    torch.testing.assert_close(flipped.pair_actions[..., 1], batch.pair_actions[..., 1])
