"""Which latents the reward heads read, and which ego speed the rewards use."""

import numpy as np
import pytest
import torch

from drivesim.env.drive_env import DriveWorldEnv
from drivesim.env.vector_env import DriveWorldVectorEnv
from drivesim.model_folder import save_stage
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import RandomModelSpec, build_random_model
from drivesim.rollout.reward_model import RewardModel, RewardModelConfig
from drivesim.rollout.reward_reading import RewardReader
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from tests.rollout.conftest import FAST


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


class _PairRecorder(torch.nn.Module):
    """Stands in for the reward heads: records the latent pairs it is given."""

    def __init__(self, heads: torch.nn.Module) -> None:
        super().__init__()
        self.heads, self.pairs = heads, []

    def forward(self, latents):
        self.pairs.append(latents.clone())
        return self.heads(latents)


def test_the_reward_heads_read_a_pair_at_their_trained_stride(tmp_path):
    # keyframes 16 source frames apart, filled x4 twice (one latent per source frame); heads trained at 4
    folder = build_random_model(
        tmp_path / "m", RandomModelSpec(keyframe_stride=16, reward_stride=4))
    world = load(folder)
    world.reward = _PairRecorder(world.reward)
    engine = LearnedEngine(world, EngineConfig(**FAST))
    assert engine.frames_per_step == 16 and engine.reader.offset == 4
    state = engine.start([SceneRequest(0, 1, seed=3)]).state
    fills = []
    fill = engine.fill
    engine.fill = lambda *a, **k: fills.append(fill(*a, **k)) or fills[-1]
    out = engine.step(state, np.zeros((1, 2), np.float32))
    pair, fresh = world.reward.pairs[-1], fills[-1]  # fresh: (1, 16, c, h, w), the new keyframe last
    torch.testing.assert_close(pair[:, 1], out.keyframes)
    torch.testing.assert_close(pair[:, 0], fresh[:, -5])  # 4 source frames before the new keyframe
    assert not torch.equal(pair[:, 0], state.context[:, -1])  # not the previous keyframe, 16 frames back


def test_without_finer_latents_the_reward_heads_read_the_keyframes_with_a_warning(tmp_path):
    folder = build_random_model(
        tmp_path / "m", RandomModelSpec(keyframe_stride=16, reward_stride=4))
    with pytest.warns(UserWarning, match="trained on latents 4 source frames apart"):
        engine = LearnedEngine(load(folder), EngineConfig(**FAST, interpolate=False))
    assert engine.reader.offset is None
    keys = torch.randn(1, 3, 4, 8, 16)
    torch.testing.assert_close(engine.reader.pair(keys, keys[:, -1:]), keys[:, -2:])


def test_the_rewarded_speed_follows_the_commanded_accel_and_the_head_reading_is_kept(model_dir, engine):
    s = engine.start([SceneRequest(0, 1, seed=4, speed=20.0)] * 2).state
    out = engine.step(s, np.array([[0.0, 1.0], [0.0, -1.0]], np.float32))
    np.testing.assert_allclose(out.speed, out.state.context_speed[:, -1].numpy())
    assert out.speed[0] > 20.0 > out.speed[1]
    np.testing.assert_allclose(out.speed_read, out.state.speed.numpy())  # the reward head's reading
    head = LearnedEngine(load(model_dir), EngineConfig(**FAST, speed_source="head"))
    h = head.step(head.start([SceneRequest(0, 1, seed=4, speed=20.0)]).state, np.zeros((1, 2), np.float32))
    np.testing.assert_allclose(h.speed, h.speed_read)
    with pytest.raises(ValueError, match="speed_source='gps'.*allowed"):
        LearnedEngine(load(model_dir), EngineConfig(**FAST, speed_source="gps"))


def test_heads_with_pose_put_lateral_offset_and_heading_in_the_env_info(tmp_path):
    folder = build_random_model(tmp_path / "m", RandomModelSpec(reward_pose=True))
    env = DriveWorldEnv(engine=LearnedEngine(load(folder), EngineConfig(**FAST)), horizon_steps=3)
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert np.isfinite(info["lateral_offset"]) and np.isfinite(info["heading"])
    plain_world = load(build_random_model(tmp_path / "p"))
    plain = DriveWorldEnv(engine=LearnedEngine(plain_world, EngineConfig(**FAST)), horizon_steps=3)
    plain.reset(seed=0)
    info = plain.step(np.zeros(2, np.float32))[-1]
    assert "lateral_offset" not in info and "heading" not in info and "speed_read" in info


def test_a_pose_stage_gives_the_pose_the_lane_rewards_and_leaves_the_events_to_the_reward_heads(tmp_path):
    folder = build_random_model(tmp_path / "m", RandomModelSpec(pose_heads=True))
    world = load(folder)
    assert world.pose is not None and world.pose.config.pose and not world.reward.config.pose
    engine = LearnedEngine(world, EngineConfig(**FAST))
    state = engine.start([SceneRequest(0, 1, seed=2)]).state
    out = engine.step(state, np.zeros((1, 2), np.float32))
    assert out.pose.shape == (1, 2) and np.isfinite(out.pose).all()
    env = DriveWorldEnv(engine=engine, horizon_steps=3)
    env.reset(seed=0)
    info = env.step(np.zeros(2, np.float32))[-1]
    assert np.isfinite(info["lateral_offset"]) and set(info["rewards"]) >= {"right_lane", "lane_centering"}
    venv = DriveWorldVectorEnv(num_envs=2, engine=engine, horizon_steps=3)
    venv.reset(seed=0)
    vinfo = venv.step(np.zeros((2, 2), np.float32))[-1]
    assert vinfo["lateral_offset"].shape == (2,) and "lane_centering" in vinfo["rewards"]
    imagined = engine.imagine(state, np.zeros((2, 2, 2), np.float32), decode=False)
    assert imagined.pose.shape == (2, 2, 2)
    plain_engine = LearnedEngine(load(build_random_model(tmp_path / "p")), EngineConfig(**FAST))
    plain = DriveWorldVectorEnv(num_envs=2, engine=plain_engine)
    plain.reset(seed=0)
    pinfo = plain.step(np.zeros((2, 2), np.float32))[-1]
    assert "lateral_offset" not in pinfo and set(pinfo["rewards"]) == {"collision", "high_speed", "on_road"}


def test_a_pose_stage_that_does_not_read_the_pose_is_refused(tmp_path):
    folder = build_random_model(tmp_path / "m")
    cfg = RewardModelConfig(channels=16)
    save_stage(folder, "pose", RewardModel(cfg), cfg, extra={"stride": 4})
    with pytest.raises(ValueError, match="stage 'pose' has pose=false"):
        load(folder)
