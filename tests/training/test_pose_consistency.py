"""The pose-consistency term of the prediction stage (`pose_weight`): frozen pose heads read each predicted
frame's clean estimate beside its true predecessor against what they read from the true frame."""

import json
from pathlib import Path

import pytest
import torch

from drivesim.autoencoder.latent_cache import collate_latent_windows
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.unet import SpatialUNet
from drivesim.diffusion.video_loading import load_video_ldm
from drivesim.diffusion.video_unet import VideoUNet
from drivesim.model_folder import read_folder_config
from drivesim.rollout.reward_model import RewardModel, RewardModelConfig
from drivesim.training.checkpoint import save_stage
from drivesim.training.clip_batch import clip_batch
from drivesim.training.pose_consistency import PoseConsistency, load_pose_consistency
from drivesim.training.video_config import VideoLDMTrainConfig
from drivesim.training.video_ldm import train, window_dataset
from drivesim.training.video_loss import masked_loss
from tests.training.test_video_ldm import UNET, _cfg, _prepare, make_latent_cache

C, H, W = 4, 8, 16
HEADS = RewardModelConfig(latent_channels=C, channels=8, pool_grid=(2, 4), pose=True)

pytestmark = pytest.mark.usefixtures("one_thread")


def _pose(weight: float = 1.0) -> PoseConsistency:
    torch.manual_seed(0)
    return PoseConsistency(RewardModel(HEADS).eval().requires_grad_(False), weight)


def _pose_folder(folder: Path, stride: int, pose: bool = True) -> Path:
    torch.manual_seed(0)
    cfg = RewardModelConfig(latent_channels=C, channels=8, pool_grid=(2, 4), pose=pose)
    save_stage(folder, "pose", RewardModel(cfg), cfg, extra={"stride": stride})
    return folder


def test_the_truth_scores_zero_and_only_predicted_frames_after_the_first_count():
    torch.manual_seed(1)
    z = torch.randn(2, 4, C, H, W)
    x0 = z + 0.5 * torch.randn_like(z)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    alpha2 = torch.tensor([1.0, 0.6])
    pose = _pose()
    assert float(pose.loss(z, z.clone(), mask, alpha2)) == 0.0
    base = pose.loss(z, x0, mask, alpha2)
    assert float(base) > 0
    given = x0.clone()
    given[:, 0] += 3.0  # the first frame is never read as the newer of a pair
    given[1, 1] += 3.0  # a given context frame
    torch.testing.assert_close(pose.loss(z, given, mask, alpha2), base)
    moved = x0.clone()
    moved[0, 2] += 3.0
    assert not torch.allclose(pose.loss(z, moved, mask, alpha2), base)
    assert float(pose.loss(z, x0, torch.ones(2, 4), alpha2)) == 0.0  # nothing predicted
    torch.testing.assert_close(pose.loss(z, x0, mask, 0.5 * alpha2), 0.5 * base)  # weighted by alpha(tau)^2
    with pytest.raises(ValueError, match="mask"):
        pose.loss(z, x0, mask[:, :3], alpha2)


def test_the_gradient_reaches_the_predicted_estimates_and_never_the_heads():
    torch.manual_seed(2)
    z = torch.randn(2, 3, C, H, W)
    x0 = (z + 0.3 * torch.randn_like(z)).requires_grad_(True)
    mask = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0]])
    pose = _pose()
    pose.loss(z, x0, mask, torch.ones(2)).backward()
    grad = x0.grad.abs().flatten(2).sum(-1)  # b t
    assert float(grad[0, 1]) > 0 and float(grad[0, 2]) > 0 and float(grad[1, 2]) > 0
    assert float(grad[:, 0].sum()) == 0.0 and float(grad[1, 1]) == 0.0
    assert all(p.grad is None and not p.requires_grad for p in pose.heads.parameters())


def test_loading_needs_pose_heads_at_the_keyframe_stride(tmp_path):
    with pytest.raises(ValueError, match="no 'pose' stage"):
        load_pose_consistency(tmp_path / "empty", 1.0, 4)
    with pytest.raises(ValueError, match="no 'pose' stage that reads the pose"):
        load_pose_consistency(_pose_folder(tmp_path / "blind", 4, pose=False), 1.0, 4)
    folder = _pose_folder(tmp_path / "heads", 4)
    with pytest.raises(ValueError, match="read pairs 4 source frames apart.*frame_stride=2"):
        load_pose_consistency(folder, 1.0, 2)
    pose = load_pose_consistency(folder, 2.5, 4)
    assert pose.weight == 2.5 and not pose.heads.training
    assert not any(p.requires_grad for p in pose.heads.parameters())
    with pytest.raises(ValueError, match="pose_weight=-1.0 must be >= 0"):
        VideoLDMTrainConfig(pose_weight=-1.0)


def test_masked_loss_adds_the_weighted_pose_term(tmp_path):
    make_latent_cache(tmp_path / "cache")
    cfg = _cfg(tmp_path, "pose", action_drop=0.0, label_drop=0.0, box_drop=0.0)
    dataset = window_dataset(cfg, cfg.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[5]]), use_boxes=True)
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(UNET), cfg.video)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    pose = _pose(3.0)
    parts = masked_loss(model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg, pose=pose)
    assert parts.pose is not None and float(parts.pose.detach()) > 0
    torch.testing.assert_close(parts.loss, parts.diffusion.loss + 3.0 * parts.pose)
    plain = masked_loss(model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg)
    assert plain.pose is None and torch.equal(plain.loss, parts.diffusion.loss)


def test_training_with_the_pose_term_logs_it_and_records_its_weight(tmp_path):
    make_latent_cache(tmp_path / "cache")
    missing = _prepare(tmp_path, _cfg(tmp_path, "missing", pose_weight=1.0))
    with pytest.raises(ValueError, match="no 'pose' stage"):
        train(missing)  # refused before any step
    assert not (Path(missing.run_dir) / "losses.jsonl").exists()
    heads = _pose_folder(tmp_path / "heads", 2)  # the keyframes of _cfg are 2 source frames apart
    cfg = _prepare(tmp_path, _cfg(tmp_path, "posed", pose_weight=2.0, pose_from=str(heads), max_steps=2))
    assert train(cfg).steps == 2
    rows = [json.loads(line) for line in (Path(cfg.run_dir) / "losses.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["pose"] >= 0 for row in rows) and any(row["pose"] > 0 for row in rows)
    assert read_folder_config(Path(cfg.model_dir))["video_ldm"]["extra"]["pose_weight"] == 2.0
    assert load_video_ldm(Path(cfg.model_dir)).window.frame_stride == 2
