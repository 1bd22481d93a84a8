"""`drivesim data synth|show|bdd100k` through the real command entry point."""

from pathlib import Path

import numpy as np
import pytest

from drivesim.cli.main import main
from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.dataset import ClipLabels, open_dataset, write_clip
from drivesim.data.manifest import MANIFEST_NAME, write_manifest
from drivesim.data.video import write_video


def _dataset(root: Path) -> None:
    frames = np.zeros((6, 32, 64, 3), np.uint8)
    frames[..., 0] = np.arange(64, dtype=np.uint8) * 3
    boxes = [FrameBoxes(np.array([[0.2, 0.2, 0.5, 0.8]], np.float32), np.array([1]), np.array([4]))] * 6
    ann = ClipAnnotations(num_frames=6, boxes=ClipBoxes.from_frames(boxes))
    labels = ClipLabels(id="a", fps=10.0, time_of_day="night", crowdedness="high", split="train", source="test")
    write_manifest(root / MANIFEST_NAME, [write_clip(root, labels, iter(frames), ann)])


def test_show_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import cv2

    _dataset(tmp_path / "ds")
    out = tmp_path / "board.png"
    assert main(["data", "show", f"dataset={tmp_path / 'ds'}", "clip=a", f"out={out}", "frames=4", "cols=2"]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and image.shape[1] == 2 * 64 * 6
    assert "clip a" in capsys.readouterr().out


def test_show_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _dataset(tmp_path / "ds")
    assert main(["data", "show", f"dataset={tmp_path / 'ds'}", "clip=zzz", f"out={tmp_path / 'x.png'}"]) == 1
    assert "clip='zzz' is not in" in capsys.readouterr().err
    assert main(["data", "show", f"dataset={tmp_path / 'ds'}"]) == 2  # out is required
    assert "out" in capsys.readouterr().err
    assert main(["data", "show", f"dataset={tmp_path / 'nope'}", f"out={tmp_path / 'x.png'}"]) == 1
    assert "dataset folder not found" in capsys.readouterr().err


def test_bdd100k_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_video(tmp_path / "videos" / "v1.mp4", np.full((10, 32, 64, 3), 90, np.uint8), fps=30)
    (tmp_path / "videos" / "v2.mov").write_bytes(b"not a video")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "v1.json").write_text(
        '{"name": "v1.mov", "attributes": {"timeofday": "night"}, "frames": [{"frameIndex": 0, "labels": '
        '[{"id": "1", "category": "car", "box2d": {"x1": 0, "y1": 0, "x2": 32, "y2": 16}}]}]}'
    )
    argv = [
        "data",
        "bdd100k",
        f"videos={tmp_path / 'videos'}",
        f"labels={tmp_path / 'labels'}",
        f"out={tmp_path / 'o'}",
    ]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert "1 videos converted" in output and "v2.mov" in output
    (record,) = open_dataset(tmp_path / "o").clips
    assert (record.id, record.time_of_day, record.crowdedness) == ("v1", "night", "low")


def test_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    world = pytest.importorskip("drivesim.world")
    if not hasattr(world, "World"):
        pytest.skip("drivesim.world.World is not written yet")
    out = tmp_path / "ds"
    argv = ["data", "synth", f"out={out}", "num_clips=2", "clip_seconds=1", "fps=8", "height=32", "width=64"]
    assert main(argv) == 0
    assert "2 clips written" in capsys.readouterr().out
    folder = open_dataset(out)
    assert len(folder.clips) == 2 and all(r.num_frames == 8 for r in folder.clips)
    assert main(["data", "synth", f"out={out}", "num_clips=2", "height=33"]) == 1
    assert "height=33" in capsys.readouterr().err
