import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from drivesim.data.bdd100k import Bdd100kConfig, convert_bdd100k
from drivesim.data.bdd100k_labels import (
    BddBox,
    BddKeyframe,
    BddVideoLabels,
    crowdedness_from_counts,
    map_keyframes,
    mean_vehicle_count,
    parse_label_file,
)
from drivesim.data.dataset import open_dataset
from drivesim.data.labels import BOX_CLASSES
from drivesim.data.video import VideoReader

H, W = 72, 128  # "source" size of the tiny test videos


def _write_source_video(path: Path, num_frames: int, fps: int, frames_fn) -> None:
    """A BDD100K-like source file (H.264 in a .mov or .mp4 container)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "mov" if path.suffix == ".mov" else "mp4"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for k, frame in enumerate(frames_fn(num_frames, H, W)):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = k, Fraction(1, fps)
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))


def _box(category: str, track: str, x1: float, y1: float, x2: float, y2: float) -> dict:
    return {
        "id": track,
        "category": category,
        "attributes": {"occluded": False},
        "box2d": dict(x1=x1, y1=y1, x2=x2, y2=y2),
    }


def _video_a_labels() -> dict:
    """Scalabel video object: 10 keyframes at 5 Hz; a car moving right, a truck, a traffic light."""
    frames = []
    for k in range(10):
        labels = [
            _box("car", "17", 10 + 4 * k, 30, 40 + 4 * k, 50),
            _box("truck", "abc", 80, 20, 120, 60),
            _box("traffic light", "5", 1, 1, 3, 5),
        ]
        if k == 4:
            labels.append(_box("pedestrian", "99", 60, 40, 64, 60))
        labels.append({"id": "900", "category": "lane", "poly2d": []})  # no box2d: ignored
        frames.append({"name": f"vid-a-{k + 1:07d}.jpg", "frameIndex": k, "labels": labels})
    return {"name": "vid-a.mov", "attributes": {"timeofday": "daytime", "weather": "clear"}, "frames": frames}


@pytest.fixture
def bdd_tree(tmp_path: Path, frames_fn) -> Path:
    videos, labels = tmp_path / "videos", tmp_path / "labels"
    _write_source_video(videos / "train" / "vid-a.mov", 60, 30, frames_fn)
    _write_source_video(videos / "val" / "vid-b.mp4", 20, 10, frames_fn)  # no labels
    _write_source_video(videos / "train" / "vid-c.mov", 30, 30, frames_fn)
    _write_source_video(videos / "train" / "vid-d.mov", 30, 30, frames_fn)
    (videos / "train" / "broken.mov").write_bytes(b"\x00\x01garbage" * 300)
    labels.mkdir()
    (labels / "vid-a.json").write_text(json.dumps(_video_a_labels()))
    crowded = [_box("car", str(i), 2 * i, 40, 2 * i + 8, 48) for i in range(12)]
    (labels / "more.json").write_text(
        json.dumps(
            [
                {
                    "name": "vid-c",
                    "attributes": {"timeofday": "dawn/dusk"},
                    "frames": [{"index": 0, "labels": crowded}],
                },
                {"name": "not-there.mov", "attributes": {"timeofday": "night"}, "frames": []},
            ]
        )
    )
    mot = [  # box-tracking style: a list of frames with videoName, per-frame attributes
        {
            "videoName": "vid-d",
            "frameIndex": k,
            "attributes": {"timeofday": "night"},
            "labels": crowded[: 5 + k],
        }
        for k in range(3)
    ]
    (labels / "vid-d.json").write_text(json.dumps(mot))
    bad = _video_a_labels() | {"name": "vid-e"}
    bad["frames"][2]["labels"][0]["box2d"]["x1"] = "abc"
    (labels / "bad.json").write_text(json.dumps(bad))
    return tmp_path


def test_convert_end_to_end(bdd_tree: Path) -> None:
    out = bdd_tree / "out"
    result = convert_bdd100k(
        Bdd100kConfig(videos=str(bdd_tree / "videos"), labels=str(bdd_tree / "labels"), out=str(out))
    )
    assert result.converted == 4 and result.unlabelled == 1
    assert [Path(s.path).name for s in result.skipped] == ["broken.mov"]
    assert len(result.bad_label_files) == 1
    assert "frames[2].labels[0].box2d.x1" in result.bad_label_files[0].reason
    assert "bad.json" in result.bad_label_files[0].reason
    assert result.labels_without_video == ["not-there"]  # bad.json (vid-e) was refused as a whole
    assert json.loads((out / "bdd100k_report.json").read_text())["skipped"][0]["path"].endswith("broken.mov")

    folder = open_dataset(out)
    rec = {r.id: r for r in folder.clips}
    assert sorted(rec) == ["vid-a", "vid-b", "vid-c", "vid-d"]
    a, b, c, d = rec["vid-a"], rec["vid-b"], rec["vid-c"], rec["vid-d"]
    assert (a.time_of_day, a.crowdedness, a.split, a.fps, a.num_frames, a.source) == (
        "day",
        "low",
        "train",
        30.0,
        60,
        "bdd100k",
    )
    assert (b.time_of_day, b.crowdedness, b.split, b.annotations, b.num_frames) == (
        "unknown",
        "unknown",
        "val",
        None,
        20,
    )
    assert (c.time_of_day, c.crowdedness) == ("dawn_dusk", "high")  # 12 cars
    assert (d.time_of_day, d.crowdedness) == ("night", "medium")  # 5, 6, 7 cars: mean 6
    with VideoReader(folder.video_path(a)) as reader:
        assert (reader.info.height, reader.info.width, reader.info.num_frames) == (H, W, 60)

    boxes = folder.load_annotations(a).boxes
    scale = np.array([W, H, W, H], np.float32)
    # keyframe k (5 Hz) lands on video frame 6k (30 fps)
    for k in (0, 4, 9):
        fb = boxes.frame(6 * k)
        names = fb.class_names
        car = fb.xyxy[names.index("car")]
        np.testing.assert_allclose(car, np.array([10 + 4 * k, 30, 40 + 4 * k, 50]) / scale, atol=1e-6)
        assert "truck" in names and len(names) == (3 if k == 4 else 2)  # traffic light and lane dropped
    # between keyframes the car is interpolated; the pedestrian (keyframe 4 only) is held near it
    mid = boxes.frame(3)
    np.testing.assert_allclose(mid.xyxy[mid.class_names.index("car")], np.array([12, 30, 42, 50]) / scale, atol=1e-6)
    assert "pedestrian" in boxes.frame(26).class_names and "pedestrian" not in boxes.frame(20).class_names
    track_of = {BOX_CLASSES[int(c)]: int(t) for c, t in zip(boxes.frame(0).classes, boxes.frame(0).track_ids)}
    assert track_of == {"car": 0, "truck": 1}  # string ids become small ints by first appearance
    assert boxes.labelled[:55].all() and not boxes.labelled[55:].any()  # last keyframe is frame 54

    # a second run converts nothing new
    again = convert_bdd100k(
        Bdd100kConfig(videos=str(bdd_tree / "videos"), labels=str(bdd_tree / "labels"), out=str(out))
    )
    assert again.converted == 0 and len(again.records) == 4


def test_resize_and_require_labels(bdd_tree: Path) -> None:
    cfg = Bdd100kConfig(
        videos=str(bdd_tree / "videos"),
        labels=str(bdd_tree / "labels"),
        out=str(bdd_tree / "small"),
        height=36,
        width=64,
        require_labels=True,
        split="hash",
    )
    result = convert_bdd100k(cfg)
    assert sorted(r.id for r in result.records) == ["vid-a", "vid-c", "vid-d"]
    assert {(r.height, r.width) for r in result.records} == {(36, 64)}
    assert any("no labels" in s.reason for s in result.skipped)


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give both or neither"):
        Bdd100kConfig(videos="v", out="o", height=32)
    with pytest.raises(ValueError, match="split='dev'"):
        Bdd100kConfig(videos="v", out="o", split="dev")
    with pytest.raises(FileNotFoundError, match="videos="):
        convert_bdd100k(Bdd100kConfig(videos=str(tmp_path / "none"), out=str(tmp_path / "o")))


def test_parse_timestamps_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "det.json"
    path.write_text(json.dumps({"name": "x.mov", "frames": [{"timestamp": 10000, "labels": []}]}))
    (video,) = parse_label_file(path)
    assert (video.name, video.timeofday, video.keyframes[0].time_s) == ("x", "undefined", 10.0)
    path.write_text(json.dumps({"name": "x.mov", "frames": [{"labels": []}]}))
    with pytest.raises(ValueError, match=r"det\.json: field \$\.frames\[0\]\.frameIndex is missing"):
        parse_label_file(path)
    path.write_text("{oops")
    with pytest.raises(ValueError, match=r"det\.json: not a readable JSON"):
        parse_label_file(path)


def test_crowdedness_thresholds() -> None:
    assert [crowdedness_from_counts(m, (4, 10)) for m in (0, 3.9, 4, 9.99, 10, 40)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert crowdedness_from_counts(None, (4, 10)) == "unknown"
    kf = BddKeyframe(0.0, (BddBox("car", "1", (0, 0, 1, 1)), BddBox("pedestrian", "2", (0, 0, 1, 1))))
    labels = BddVideoLabels("v", "night", (kf, BddKeyframe(0.2, ())), "f.json")
    assert mean_vehicle_count(labels, ("car",)) == 0.5


def test_map_keyframes_without_interpolation_and_dropping() -> None:
    kf = [BddKeyframe(t, (BddBox("bus", None, (0, 0, 64, 36)),)) for t in (0.0, 0.2, 5.0)]
    mapping = map_keyframes(BddVideoLabels("v", "daytime", tuple(kf), "f"), 10, 30.0, (72, 128), interpolate=False)
    assert mapping.dropped_keyframes == 1  # 5 s is past the 10-frame video
    assert mapping.boxes.labelled.tolist() == [True] + [False] * 5 + [True] + [False] * 3
    fb = mapping.boxes.frame(6)
    assert fb.class_names == ("bus",) and fb.track_ids.tolist() == [-1]
    np.testing.assert_allclose(fb.xyxy, [[0, 0, 0.5, 0.5]])
    assert len(mapping.boxes.frame(3)) == 0
