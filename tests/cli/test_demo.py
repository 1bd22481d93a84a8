import json

import torch

from drivesim.cli.main import main
from drivesim.data.video import VideoReader
from drivesim.rollout.random_model import RandomModelSpec, build_random_model


def test_demo_writes_videos_storyboard_and_summary(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", f"out={out}", "source=world", "seconds=1", "height=64", "width=128"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [s["scenario"]["name"] for s in summary["scenarios"]] == ["day_lane_change_brake", "night_crowded"]
    night = summary["scenarios"][1]
    assert night["mean_vehicles_in_view"] > summary["scenarios"][0]["mean_vehicles_in_view"]
    with VideoReader(out / "night_crowded.mp4") as r:
        frames = list(r.frames())
    assert len(frames) == 15 and frames[0].shape == (64, 128, 3)  # the night run is half the demo's seconds
    assert (out / "storyboard.png").stat().st_size > 1000


def test_demo_rejects_bad_settings(tmp_path, capsys):
    assert main(["demo", f"out={tmp_path}", "seconds=-1"]) == 1
    assert "must be positive" in capsys.readouterr().err
    assert main(["demo", "speed=3"]) == 2
    assert main(["demo", f"out={tmp_path}", "source=dream"]) == 1
    assert "allowed: ['auto', 'learned', 'world']" in capsys.readouterr().err


def test_learned_demo_rolls_out_composed_scenes(tmp_path):
    torch.set_num_threads(1)
    # the demo's day drive runs the stride-4 stage under a lane keeper on the pose heads
    model = build_random_model(tmp_path / "model", RandomModelSpec(pose_heads=True, extra_predictions=(4,)))
    out = tmp_path / "demo"
    fast = ["engine.keyframe_steps=1", "engine.first_frame_steps=1", "engine.interpolation_steps=1"]
    # model= implies the learned source; the random model's keyframes are 4 frames apart at 30 fps
    assert main(["demo", f"out={out}", f"model={model}", "seconds=1", "storyboard_frames=3", *fast]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"] == "learned world model"
    day, night = summary["scenarios"]
    assert (day["time_of_day"], night["time_of_day"]) == ("day", "night")
    assert json.loads((out / f"{day['name']}_boxes.json").read_text()) == day["boxes"] and day["boxes"]
    with VideoReader(out / day["video"]) as r:
        frames = list(r.frames())
    assert len(frames) == day["frames"] and frames[0].shape == (32, 64, 3)
    assert day["frames"] >= 29  # 1 s at the model's output rate, plus the first frame
    assert night["frames"] < day["frames"]  # half the demo's seconds
    assert day["engine"]["prediction"] == "video_ldm_stride4" and night["engine"]["prediction"] == "video_ldm"
    assert day["compute_dtype"] in ("float32", "bfloat16")  # "auto" resolved, as it ran
    assert day["layout"] == ("channels_last" if day["compute_dtype"] == "bfloat16" else "nchw")  # so is layout
    assert day["policy"] == "keeper_lane_change_brake" and day["lateral_offset_range_lanes"] is not None
    assert (out / "storyboard.png").stat().st_size > 500


def test_learned_demo_names_the_scenario_whose_settings_fail(tmp_path, capsys):
    model = build_random_model(tmp_path / "model", RandomModelSpec(pose_heads=True))  # no stride-4 stage
    out = tmp_path / "demo"
    assert main(["demo", f"out={out}", f"model={model}", "seconds=1", "engine.first_frame_steps=1"]) == 1
    err = capsys.readouterr().err
    assert "scenario day_lane_change_brake" in err and "video_ldm_stride4" in err
