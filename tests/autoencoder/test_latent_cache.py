"""Latent cache: encode a tiny dataset (real MP4 + annotation files) and read windows back."""

from pathlib import Path

import numpy as np
import pytest
import torch
from einops import rearrange
from omegaconf import OmegaConf

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.latent_cache import (
    LatentWindowConfig,
    LatentWindowDataset,
    collate_latent_windows,
    encode_dataset,
    read_cache,
)
from drivesim.autoencoder.loading import load_autoencoder
from drivesim.autoencoder.model import Autoencoder
from drivesim.cli.latents_cmd import run_latents
from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.dataset import ClipLabels, open_dataset, write_clip
from drivesim.data.manifest import MANIFEST_NAME, write_manifest
from drivesim.training.checkpoint import save_stage

CFG = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
T = 10


def _clip(seed: int) -> tuple[list[np.ndarray], ClipAnnotations]:
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (16, 32, 3), dtype=np.uint8) for _ in range(T)]
    per_frame = []
    for i in range(T):
        n = i % 3
        xyxy = np.array([[0.1 * k, 0.1, 0.1 * k + 0.05 * (i + 1), 0.5] for k in range(n)], np.float32)
        per_frame.append(FrameBoxes(xyxy.reshape(n, 4), np.zeros(n, np.int64), np.arange(n, dtype=np.int64)))
    actions = rng.uniform(-1, 1, (T, 2)).astype(np.float32)
    ego = np.stack([20 + np.arange(T), rng.uniform(-1, 1, T), rng.uniform(-0.1, 0.1, T)], 1).astype(np.float32)
    return frames, ClipAnnotations(num_frames=T, boxes=ClipBoxes.from_frames(per_frame), actions=actions, ego=ego)


def _dataset(root: Path) -> Path:
    records = []
    for i, (split, tod) in enumerate([("train", "day"), ("train", "night"), ("val", "day")]):
        frames, ann = _clip(i)
        labels = ClipLabels(id=f"k{i}", fps=30.0, time_of_day=tod, crowdedness="high", split=split, source="t")
        records.append(write_clip(root, labels, frames, ann))
    write_manifest(root / MANIFEST_NAME, records)
    return root


def _model_dir(root: Path) -> Path:
    torch.manual_seed(0)
    model = Autoencoder(CFG)
    save_stage(root, "autoencoder", model, CFG, extra={"latent_scale": 0.5, "image_size": [16, 32]})
    return root


def test_cache_round_trip_and_windows(tmp_path):
    dataset = _dataset(tmp_path / "ds")
    model = load_autoencoder(_model_dir(tmp_path / "model"))
    assert float(model.latent_scale) == 0.5
    summary = encode_dataset(dataset, model, tmp_path / "cache", height=16, width=32, batch_frames=4)
    assert summary.encoded == 3 and summary.frames == 3 * T and not summary.skipped
    meta, records = read_cache(tmp_path / "cache")
    assert meta["latent_scale"] == 0.5 and meta["posterior"] == "mean" and len(records) == 3

    ds = LatentWindowDataset(tmp_path / "cache", LatentWindowConfig(num_frames=4, stride=2, split="train"))
    assert len(ds) == 2  # span 7 in 10 frames: one window per train clip
    w = ds[1]
    assert w.clip_id == "k1" and w.time_of_day == 1 and w.crowdedness == 2 and w.has_actions
    folder = open_dataset(dataset)
    record = folder.clip("k1")
    with folder.open_video(record) as reader:
        frames = reader.read_window(0, 4, 2)  # t h w c
    x = rearrange(torch.from_numpy(frames), "t h w c -> t c h w").float() / 127.5 - 1.0
    with torch.no_grad():
        expected = model.encode(x).mean * 0.5
    assert torch.allclose(w.latents, expected, atol=1e-5)
    ann = folder.load_annotations(record)
    # stride 2: each frame carries the mean of the two actions that led to it
    expected = np.stack([ann.actions[max(i - 1, 0) : i + 1].mean(0) for i in (0, 2, 4, 6)])
    assert torch.allclose(w.actions, torch.from_numpy(expected), atol=1e-6)
    assert w.box_mask.sum(dim=1).tolist() == [0, 2, 1, 0]  # frames 0, 2, 4, 6 have i % 3 boxes
    # ego: speed, then [lateral offset, heading] of each window frame
    assert torch.equal(w.ego_speed, torch.from_numpy(ann.ego[[0, 2, 4, 6], 0]))
    assert torch.equal(w.ego_pose, torch.from_numpy(ann.ego[[0, 2, 4, 6], 1:3]))
    assert torch.allclose(w.boxes[1, :2], torch.from_numpy(ann.boxes.frame(2).xyxy))
    batch = collate_latent_windows([ds[0], ds[1]])
    assert batch.latents.shape == (2, 4, 4, 8, 16) and batch.time_of_day.tolist() == [0, 1]
    assert batch.ego_pose.shape == (2, 4, 2)


def test_rerun_resumes_and_cli_uses_checkpoint_size(tmp_path):
    dataset = _dataset(tmp_path / "ds")
    ckpt = _model_dir(tmp_path / "model")
    cfg = OmegaConf.create(
        {"dataset": str(dataset), "ckpt": str(ckpt), "out": str(tmp_path / "c"), "splits": ["train"]}
    )
    first = run_latents(cfg)
    assert first.encoded == 2
    cfg.splits = None
    second = run_latents(cfg)
    assert second.encoded == 1 and second.reused == 2
    with pytest.raises(ValueError, match="latent_scale"):
        other = Autoencoder(CFG)
        encode_dataset(dataset, other, tmp_path / "c", height=16, width=32, source_checkpoint=str(ckpt))
    with pytest.raises(ValueError, match="split"):
        LatentWindowDataset(tmp_path / "c", LatentWindowConfig(num_frames=4, split="nope"))


def test_latents_device_is_checked(tmp_path):
    base = {"dataset": str(tmp_path), "ckpt": str(tmp_path), "out": str(tmp_path / "c")}
    with pytest.raises(ValueError, match="device='tpu' must be 'cpu' or 'cuda'"):
        run_latents(OmegaConf.create({**base, "device": "tpu"}))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            run_latents(OmegaConf.create({**base, "device": "cuda"}))
