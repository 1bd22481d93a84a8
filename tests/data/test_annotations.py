from pathlib import Path

import numpy as np
import pytest

from drivesim.data.annotations import (
    ClipAnnotations,
    ClipBoxes,
    FrameBoxes,
    interval_actions,
    load_annotations,
    save_annotations,
)


def _assert_same(a: ClipAnnotations, b: ClipAnnotations) -> None:
    assert a.num_frames == b.num_frames
    for name in ("offsets", "xyxy", "classes", "track_ids", "labelled"):
        np.testing.assert_array_equal(getattr(a.boxes, name), getattr(b.boxes, name))
    for name in ("actions", "ego", "events"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_round_trip_is_exact(tmp_path: Path, annotations_fn) -> None:
    ann = annotations_fn(15, seed=3)
    path = tmp_path / "a.npz"
    save_annotations(path, ann)
    loaded = load_annotations(path, expected_num_frames=15)
    _assert_same(ann, loaded)
    frame = loaded.boxes.frame(4)
    assert frame.xyxy.shape == (len(frame), 4)
    assert set(frame.class_names) <= {"car", "truck"}


def test_every_part_is_optional(tmp_path: Path) -> None:
    path = tmp_path / "b.npz"
    save_annotations(path, ClipAnnotations(num_frames=3))
    loaded = load_annotations(path)
    assert (loaded.num_frames, loaded.boxes, loaded.actions, loaded.ego, loaded.events) == (
        3,
        None,
        None,
        None,
        None,
    )
    only_events = ClipAnnotations(num_frames=2, events=np.array([[True, False], [False, True]]))
    save_annotations(path, only_events)
    np.testing.assert_array_equal(load_annotations(path).events, only_events.events)


def test_class_names_on_disk_are_mapped_back(tmp_path: Path) -> None:
    # a file naming only "bus" and "pedestrian" (indices 2 and 6 of BOX_CLASSES)
    frames = [
        FrameBoxes(np.array([[0, 0, 0.5, 0.5], [0.1, 0.1, 0.2, 0.3]], np.float32), np.array([6, 2]), np.array([1, 2]))
    ]
    save_annotations(tmp_path / "c.npz", ClipAnnotations(num_frames=1, boxes=ClipBoxes.from_frames(frames)))
    with np.load(tmp_path / "c.npz") as npz:
        assert list(npz["boxes_class_names"]) == ["bus", "pedestrian"]
    assert load_annotations(tmp_path / "c.npz").boxes.frame(0).class_names == ("pedestrian", "bus")


def _rewrite(src: Path, dst: Path, **changes: object) -> None:
    with np.load(src) as npz:
        data = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    np.savez_compressed(dst, **data)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"boxes_xyxy": "out_of_range"}, "boxes_xyxy"),
        ({"boxes_xyxy": "swapped"}, "boxes_xyxy"),
        ({"actions": np.zeros((4, 2), np.float32)}, "actions"),
        ({"ego": np.full((6, 3), np.nan, np.float32)}, "ego"),
        ({"events": np.zeros((6, 2), np.float32)}, "events"),
        ({"boxes_track_id": None}, "boxes_track_id"),
        ({"boxes_class_names": np.array(["car", "spaceship"])}, "boxes_class_names"),
        ({"extra_field": np.zeros(3)}, "extra_field"),
        ({"version": np.array(7)}, "version"),
        ({"num_frames": np.array(9)}, "boxes_offsets"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path: Path, annotations_fn, changes: dict, field: str) -> None:
    good = tmp_path / "good.npz"
    save_annotations(good, annotations_fn(6, seed=1, max_boxes=3))
    with np.load(good) as npz:
        xyxy = npz["boxes_xyxy"].copy()
    if changes.get("boxes_xyxy") == "out_of_range":
        xyxy[0, 2] = 1.5
        changes["boxes_xyxy"] = xyxy
    elif changes.get("boxes_xyxy") == "swapped":
        xyxy[0] = [0.5, 0.5, 0.1, 0.6]
        changes["boxes_xyxy"] = xyxy
    bad = tmp_path / "bad_clip.npz"
    _rewrite(good, bad, **changes)
    with pytest.raises(ValueError) as info:
        load_annotations(bad)
    message = str(info.value)
    assert "bad_clip.npz" in message and repr(field) in message, message


def test_frame_count_must_match_manifest(tmp_path: Path, annotations_fn) -> None:
    save_annotations(tmp_path / "d.npz", annotations_fn(5))
    with pytest.raises(ValueError, match=r"d\.npz: field 'num_frames'=5 does not match the manifest's 6"):
        load_annotations(tmp_path / "d.npz", expected_num_frames=6)


def test_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "e.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"e\.npz: not a readable npz"):
        load_annotations(tmp_path / "e.npz")


def test_invalid_annotations_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'actions'"):
        ClipAnnotations(num_frames=3, actions=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="'boxes_offsets'"):
        ClipAnnotations(num_frames=3, boxes=ClipBoxes.from_frames([FrameBoxes.empty()] * 2))


def test_interval_actions_average_what_led_to_each_keyframe() -> None:
    actions = np.stack([np.arange(10.0), -np.arange(10.0)], axis=1).astype(np.float32)  # (10, 2)
    out = interval_actions(actions, np.array([0, 4, 8]), stride=4)
    # frame 0: only itself; frame 4: actions 1..4; frame 8: actions 5..8
    np.testing.assert_allclose(out[:, 0], [0.0, 2.5, 6.5])
    np.testing.assert_allclose(out[:, 1], [0.0, -2.5, -6.5])
    np.testing.assert_array_equal(interval_actions(actions, np.array([3, 7]), stride=1), actions[[3, 7]])
    with pytest.raises(ValueError, match="stride"):
        interval_actions(actions, np.array([0]), stride=0)
    with pytest.raises(ValueError, match="indices"):
        interval_actions(actions, np.array([10]), stride=2)
