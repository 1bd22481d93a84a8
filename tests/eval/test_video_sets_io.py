import numpy as np
import pytest

from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import write_manifest
from drivesim.data.video import write_video
from drivesim.eval.video_sets import EvalClip, VideoSet, load_video_set


def test_plain_mp4_folder(tmp_path, clips):
    for i in range(2):
        write_video(tmp_path / f"gen_{i}.mp4", clips[i], fps=10)
    (tmp_path / "notes.txt").write_text("ignored")
    vs = load_video_set(tmp_path, max_frames=5)
    assert [c.id for c in vs.clips] == ["gen_0", "gen_1"]
    assert vs.clips[0].frames.shape == (5, 32, 64, 3) and vs.clips[0].fps == pytest.approx(10)
    assert vs.clips[0].time_of_day is None and vs.clips[0].actions is None
    # lossy H.264 stays close to the source
    assert np.abs(vs.clips[0].frames.astype(int) - clips[0, :5].astype(int)).mean() < 12


def test_dataset_folder_with_annotations(tmp_path, clips):
    t = clips.shape[1]
    boxes = ClipBoxes.from_frames(
        [FrameBoxes(np.array([[0.1, 0.2, 0.4, 0.6]], np.float32), np.zeros(1, np.int64), np.zeros(1, np.int64))] * t
    )
    actions = np.tile(np.array([[0.5, -0.25]], np.float32), (t, 1))
    ann = ClipAnnotations(num_frames=t, boxes=boxes, actions=actions)
    records = [
        write_clip(tmp_path, ClipLabels("c0", 10.0, "night", "high", "test", "generated"), iter(clips[0]), ann),
        write_clip(tmp_path, ClipLabels("c1", 10.0, "dawn_dusk", "unknown", "test", "generated"), iter(clips[1])),
    ]
    write_manifest(tmp_path / "manifest.jsonl", records)
    vs = load_video_set(tmp_path)
    c0, c1 = vs.clips
    assert (c0.time_of_day, c0.crowdedness) == ("night", "high")
    assert (c1.time_of_day, c1.crowdedness) == (None, None)  # outside the probes' vocabulary
    np.testing.assert_allclose(c0.actions, actions)
    np.testing.assert_allclose(c0.boxes[3], [[0.1, 0.2, 0.4, 0.6]])
    assert c1.boxes is None


def test_bad_folders_and_clips(tmp_path, clips):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_video_set(tmp_path / "missing")
    with pytest.raises(ValueError, match="no videos found"):
        load_video_set(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        VideoSet(clips=(), source="x")
    with pytest.raises(ValueError, match="uint8"):
        EvalClip("a", clips[0].astype(np.float32), 10.0)
    with pytest.raises(ValueError, match=r"\(t, h, w, 3\)"):
        EvalClip("a", clips[0][..., :1], 10.0)
    with pytest.raises(ValueError, match="actions"):
        EvalClip("a", clips[0], 10.0, actions=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="time_of_day"):
        EvalClip("a", clips[0], 10.0, time_of_day="dusk")
    with pytest.raises(ValueError, match="repeated"):
        VideoSet(clips=(EvalClip("a", clips[0], 10.0), EvalClip("a", clips[1], 10.0)), source="x")
