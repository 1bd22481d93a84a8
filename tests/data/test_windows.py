import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from drivesim.data.dataset import open_dataset
from drivesim.data.windows import DataWarning, WindowConfig, WindowDataset, collate_windows

torch.set_num_threads(1)


def test_len_shapes_values_and_labels(tiny_dataset: Path) -> None:
    cfg = WindowConfig(num_frames=4, stride=2, height=16, width=32, split=None, max_boxes=3, window_step=1)
    ds = WindowDataset(tiny_dataset, cfg)
    assert len(ds) == 3 * (12 - 7 + 1)  # span (4 - 1) * 2 + 1 = 7 frames, one window per start
    sample = ds[0]
    assert sample.video.shape == (4, 3, 16, 32) and sample.video.dtype == torch.float32
    assert -1.0 <= sample.video.min() and sample.video.max() <= 1.0 and sample.video.std() > 0.1
    assert sample.boxes.shape == (4, 3, 4) and sample.box_classes.shape == (4, 3) and sample.box_mask.shape == (4, 3)
    assert sample.actions.shape == (4, 2) and sample.ego_speed.shape == (4,) and sample.events.shape == (4, 2)
    assert (sample.clip_id, sample.start, sample.time_of_day, sample.crowdedness) == ("clip_00", 0, 0, 0)
    last = ds[len(ds) - 1]
    assert (last.clip_id, last.start, last.time_of_day, last.crowdedness) == (
        "clip_02",
        5,
        -1,
        2,
    )  # unknown -> -1


def test_stride_picks_the_right_frames(tiny_dataset: Path) -> None:
    ds = WindowDataset(tiny_dataset, WindowConfig(num_frames=3, stride=3, height=32, width=64, split=None))
    for index in range(len(ds)):
        sample = ds[index]
        blue = (sample.video[:, 2].mean(dim=(1, 2)) + 1) * 127.5  # frame k of a clip has blue 20 + 7k
        expected = 20 + 7 * (sample.start + 3 * torch.arange(3))
        assert torch.allclose(blue, expected.float(), atol=3.0), (blue, expected)


def test_annotations_follow_the_window(tiny_dataset: Path) -> None:
    cfg = WindowConfig(num_frames=5, stride=2, height=16, width=32, split=None, max_boxes=3, window_step=3)
    ds = WindowDataset(tiny_dataset, cfg)
    folder = open_dataset(tiny_dataset)
    truncated = 0
    for index in range(len(ds)):
        s = ds[index]
        ann = folder.load_annotations(folder.clip(s.clip_id))
        frames = np.arange(s.start, s.start + 10, 2)
        # each keyframe carries the mean of the actions that led to it from the previous one
        expected = [ann.actions[max(i - 1, 0) : i + 1].mean(0) for i in frames]
        np.testing.assert_allclose(s.actions.numpy(), np.stack(expected), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.ego_speed.numpy(), ann.ego[frames, 0])
        np.testing.assert_array_equal(s.events.numpy(), ann.events[frames])
        assert s.boxes_labelled.all() and s.has_actions and s.has_ego and s.has_events
        for k, i in enumerate(frames):
            fb = ann.boxes.frame(int(i))
            n = int(s.box_mask[k].sum())
            assert n == min(len(fb), 3)
            assert not s.box_mask[k, n:].any() and (s.boxes[k, n:] == 0).all() and (s.box_track_ids[k, n:] == -1).all()
            if len(fb) > 3:  # the three largest boxes are kept, in their original order
                truncated += 1
                area = (fb.xyxy[:, 2] - fb.xyxy[:, 0]) * (fb.xyxy[:, 3] - fb.xyxy[:, 1])
                keep = np.sort(np.argsort(-area)[:3])
                np.testing.assert_allclose(s.boxes[k, :3].numpy(), fb.xyxy[keep])
            else:
                np.testing.assert_allclose(s.boxes[k, :n].numpy(), fb.xyxy)
                np.testing.assert_array_equal(s.box_classes[k, :n].numpy(), fb.classes)
                np.testing.assert_array_equal(s.box_track_ids[k, :n].numpy(), fb.track_ids)
    assert truncated > 0  # the toy data has frames with 4 boxes


def test_collate_through_a_dataloader(tiny_dataset: Path) -> None:
    ds = WindowDataset(tiny_dataset, WindowConfig(num_frames=2, stride=1, height=16, width=32, split=None, max_boxes=5))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_windows)
    batch = next(iter(loader))
    assert batch.video.shape == (4, 2, 3, 16, 32)
    assert batch.boxes.shape == (4, 2, 5, 4) and batch.box_classes.dtype == torch.int64
    assert batch.box_mask.shape == (4, 2, 5) and batch.box_mask.dtype == torch.bool
    assert batch.actions.shape == (4, 2, 2) and batch.ego_speed.shape == (4, 2) and batch.events.shape == (4, 2, 2)
    assert batch.time_of_day.tolist() == [0, 0, 0, 0] and batch.crowdedness.dtype == torch.int64
    assert batch.has_actions.all() and len(batch) == 4 and batch.clip_ids == ["clip_00"] * 4
    assert batch.to("cpu").starts.tolist() == [0, 2, 4, 6]


def test_split_filter_and_missing_annotations(tmp_path: Path, dataset_fn) -> None:
    dataset_fn(tmp_path / "ds", num_clips=4, splits=("train", "val"), annotate=False)
    ds = WindowDataset(tmp_path / "ds", WindowConfig(num_frames=4, height=16, width=32, split="val"))
    ids = {ds[i].clip_id for i in range(len(ds))}
    assert ids == {"clip_01", "clip_03"}
    s = ds[0]
    assert not s.has_actions and not s.boxes_labelled.any() and not s.box_mask.any() and (s.actions == 0).all()


def test_corrupt_truncated_and_missing_videos_are_skipped(tmp_path: Path, dataset_fn) -> None:
    root = tmp_path / "ds"
    dataset_fn(root, num_clips=5, num_frames=12)
    video = root / "videos"
    data = (video / "clip_01.mp4").read_bytes()
    (video / "clip_01.mp4").write_bytes(data[: len(data) * 2 // 5])  # truncated
    (video / "clip_02.mp4").write_bytes(np.random.default_rng(0).bytes(3000))  # garbage
    (video / "clip_03.mp4").unlink()  # missing
    (root / "annotations" / "clip_04.npz").write_bytes(b"junk")  # unreadable annotations
    cfg = WindowConfig(num_frames=6, stride=2, height=16, width=32, split=None)  # one window per clip
    with pytest.warns(DataWarning, match="clip_03"):
        ds = WindowDataset(root, cfg)
    assert len(ds) == 4 and ds.report().missing == ["clip_03"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [ds[i] for i in range(len(ds))]
    assert [s.clip_id for s in samples] == ["clip_00"] * 4
    assert [s.fallbacks for s in samples] == [0, 3, 2, 1]
    report = ds.report()
    assert sorted(report.failed) == ["clip_01", "clip_02", "clip_04"] and report.skipped == 4
    assert "clip_04.npz" in report.failed["clip_04"] and report.usable_clips == 1 and report.fallbacks == 6
    assert {str(w.message).split("'")[1] for w in caught if issubclass(w.category, DataWarning)} == {
        "clip_01",
        "clip_02",
        "clip_04",
    }


def test_nothing_usable(tmp_path: Path, dataset_fn) -> None:
    root = tmp_path / "ds"
    dataset_fn(root, num_clips=2, num_frames=8)
    with pytest.raises(ValueError, match="no windows of 20 frames"):
        WindowDataset(root, WindowConfig(num_frames=20, split=None))
    for p in (root / "videos").iterdir():
        p.write_bytes(b"\x00" * 100)
    ds = WindowDataset(root, WindowConfig(num_frames=2, split=None))
    with pytest.warns(DataWarning), pytest.raises(RuntimeError, match="every clip"):
        ds[0]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="num_frames=0"):
        WindowConfig(num_frames=0)
    with pytest.raises(ValueError, match="split='dev'"):
        WindowConfig(split="dev")
