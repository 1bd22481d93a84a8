"""Which latents the reward heads read, and which ego speed the rewards use."""

import numpy as np
import pytest
import torch

from drivesim.rollout.reward_model import RewardModel, RewardModelConfig
from drivesim.rollout.reward_reading import RewardReader


@pytest.fixture(scope="module")
def heads():
    torch.manual_seed(0)
    return RewardModel(RewardModelConfig(channels=16)).eval()


@pytest.mark.parametrize(
    ("trained", "keyframe", "per_step", "offset"),
    [(4, 16, 16, 4), (8, 16, 16, 8), (4, 16, 4, 1), (16, 16, 16, None), (4, 4, 4, None)],
)
def test_the_pair_is_the_trained_stride_apart_within_the_interval(heads, trained, keyframe, per_step, offset):
    reader = RewardReader(heads, trained, keyframe, per_step)
    assert reader.offset == offset
    keys = torch.randn(2, 3, 4, 8, 16)
    fresh = torch.cat([torch.randn(2, per_step - 1, 4, 8, 16), keys[:, -1:]], dim=1)
    pair = reader.pair(keys, fresh)
    assert pair.shape == (2, 2, 4, 8, 16)
    torch.testing.assert_close(pair[:, 1], keys[:, -1])
    # source frame (keyframe - trained) of the interval; the previous keyframe when they are equal
    before = keys[:, -2] if offset is None else torch.cat([keys[:, -2:-1], fresh], 1)[:, per_step - offset]
    torch.testing.assert_close(pair[:, 0], before)


@pytest.mark.parametrize(("trained", "keyframe", "per_step"), [(4, 16, 1), (32, 16, 16), (3, 16, 4)])
def test_no_latent_at_the_trained_stride_warns_and_reads_the_keyframes(heads, trained, keyframe, per_step):
    with pytest.warns(UserWarning, match=f"trained on latents {trained} source frames apart"):
        reader = RewardReader(heads, trained, keyframe, per_step, where="M")
    assert reader.offset is None


def test_without_heads_nothing_is_read_and_the_integrated_speed_is_rewarded():
    reader = RewardReader(None, 4, 16, 16, speed_source="head")
    r = reader.heads_read(torch.zeros(3, 2, 4, 8, 16))
    assert r.speed is None and r.pose is None and r.collision.tolist() == [0, 0, 0] and r.off_road.tolist() == [0, 0, 0]
    np.testing.assert_allclose(reader.rewarded_speed(torch.tensor([10.0, 20.0, 30.0]), r.speed), [10, 20, 30])


def test_the_speed_source_picks_the_rewarded_speed(heads):
    pair = torch.randn(2, 2, 4, 8, 16)
    integrated = torch.tensor([11.0, 31.0])
    for source in ("integrated", "head"):
        reader = RewardReader(heads, 4, 4, 4, speed_source=source)
        read = reader.heads_read(pair).speed
        torch.testing.assert_close(torch.from_numpy(read), heads(pair).speed)
        want = read if source == "head" else integrated.numpy()
        np.testing.assert_allclose(reader.rewarded_speed(integrated, read), want)
    with pytest.raises(ValueError, match="speed_source='gps'; allowed: \\['integrated', 'head'\\]"):
        RewardReader(heads, 4, 4, 4, speed_source="gps")


def test_heads_with_pose_report_offset_and_heading():
    torch.manual_seed(0)
    heads = RewardModel(RewardModelConfig(channels=16, pool_grid=(2, 4), pose=True)).eval()
    pair = torch.randn(2, 2, 4, 8, 16)
    r = RewardReader(heads, 4, 4, 4).heads_read(pair)
    p = heads(pair)
    np.testing.assert_allclose(r.pose, torch.stack([p.lateral_offset, p.heading], 1).detach().numpy(), rtol=1e-6)
    assert RewardReader(RewardModel(RewardModelConfig(channels=16)), 4, 4, 4).heads_read(pair).pose is None


def test_pose_heads_give_the_pose_and_the_reward_heads_the_events(heads):
    torch.manual_seed(1)
    pose_heads = RewardModel(RewardModelConfig(channels=16, difference_input=True, pool_grid=(2, 4), pose=True)).eval()
    # reward heads trained 4 frames apart, pose heads 8, in a stride-16 engine filling 16 latents
    reader = RewardReader(heads, 4, 16, 16, pose_heads=pose_heads, pose_stride=8)
    assert (reader.offset, reader.pose_offset, reader.reads_pose) == (4, 8, True)
    keys = torch.randn(2, 3, 4, 8, 16)
    fresh = torch.cat([torch.randn(2, 15, 4, 8, 16), keys[:, -1:]], dim=1)
    r = reader.read(keys, fresh)
    interval = torch.cat([keys[:, -2:-1], fresh], dim=1)
    events = heads(interval[:, [-5, -1]])
    pose = pose_heads(interval[:, [-9, -1]])
    np.testing.assert_allclose(r.off_road, events.off_road.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(r.speed, events.speed.detach().numpy(), rtol=1e-6)
    want = torch.stack([pose.lateral_offset, pose.heading], 1).detach().numpy()
    np.testing.assert_allclose(r.pose, want, rtol=1e-5, atol=1e-6)
    # at the start (no interval) both read the two newest keyframes
    start = reader.read(keys)
    p0 = pose_heads(keys[:, -2:])
    np.testing.assert_allclose(start.pose[:, 0], p0.lateral_offset.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(start.collision, heads(keys[:, -2:]).collision.detach().numpy(), rtol=1e-6)


def test_pose_heads_must_read_the_pose(heads):
    assert not RewardReader(heads, 4, 4, 4).reads_pose and not RewardReader(None, 4, 4, 4).reads_pose
    with pytest.raises(ValueError, match="pose heads of M do not read the pose"):
        RewardReader(heads, 4, 4, 4, where="M", pose_heads=RewardModel(RewardModelConfig(channels=16)))
