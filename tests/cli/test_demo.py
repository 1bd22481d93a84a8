import json

from drivesim.cli.main import main
from drivesim.data.video import VideoReader


def test_demo_writes_videos_storyboard_and_summary(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", f"out={out}", "seconds=1", "height=64", "width=128"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [s["scenario"]["name"] for s in summary["scenarios"]] == ["day_lane_change_brake", "night_crowded"]
    night = summary["scenarios"][1]
    assert night["mean_vehicles_in_view"] > summary["scenarios"][0]["mean_vehicles_in_view"]
    with VideoReader(out / "night_crowded.mp4") as r:
        frames = list(r.frames())
    assert len(frames) == 30 and frames[0].shape == (64, 128, 3)
    assert (out / "storyboard.png").stat().st_size > 1000


def test_demo_rejects_bad_settings(tmp_path, capsys):
    assert main(["demo", f"out={tmp_path}", "seconds=-1"]) == 1
    assert "must be positive" in capsys.readouterr().err
    assert main(["demo", "speed=3"]) == 2
