import json

import numpy as np
import pytest

from drivesim.cli.main import main
from drivesim.data.video import VideoReader
from drivesim.rollout.policies import load_actions, policy_actions
from drivesim.rollout.random_model import build_random_model

FAST = "engine.keyframe_steps=1"
FAST2 = ["engine.first_frame_steps=1", "engine.interpolation_steps=1"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("m"))


def test_generate_writes_video_storyboard_and_events(tmp_path, model):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[0.4, 0.5, 0.6, 0.8]]))
    out = tmp_path / "night.mp4"
    # 7.5 keyframe steps per second -> 0.02 min = 9 steps = 36 frames (+ the first)
    args = ["generate", f"model={model}", "time_of_day=night", "crowdedness=high", f"boxes={boxes}",
            "minutes=0.02", f"out={out}", "policy=random", FAST, *FAST2]
    assert main(args) == 0
    with VideoReader(out) as r:
        assert sum(1 for _ in r.frames()) == 37
    summary = json.loads(out.with_suffix(".json").read_text())
    assert len(summary["events_per_step"]["values"]) == 9 and summary["scenario"]["time_of_day"] == "night"
    assert out.with_suffix(".png").exists()


def test_generate_scenario_list_and_errors(tmp_path, model, capsys):
    lst = tmp_path / "s.yaml"
    lines = [f"- {{out: {tmp_path}/a.mp4, minutes: 0.01}}", f"- {{out: {tmp_path}/b.mp4, minutes: 0.01, policy: idle}}"]
    lst.write_text("\n".join(lines) + "\n")
    assert main(["generate", f"model={model}", f"scenarios={lst}", FAST, *FAST2]) == 0
    assert (tmp_path / "a.mp4").exists() and (tmp_path / "b.mp4").exists()
    rows = json.loads((tmp_path / "manifest.json").read_text())["scenarios"]
    assert [r["video"] for r in rows] == [f"{tmp_path}/a.mp4", f"{tmp_path}/b.mp4"]
    lst.write_text("- {speed: 3}\n")
    assert main(["generate", f"model={model}", f"scenarios={lst}", FAST, *FAST2]) == 1
    assert "bad keys ['speed']" in capsys.readouterr().err
    assert main(["generate", f"model={model}", "policy=teleport", FAST, *FAST2]) == 1
    assert main(["generate", f"model={tmp_path}/none", FAST, *FAST2]) == 1


def test_policies_and_action_files(tmp_path):
    a = policy_actions("lane_change_brake", 200, 0, 7.5)
    assert a.shape == (200, 2) and a[:, 1].min() == -1.0
    assert not np.array_equal(policy_actions("random", 50, 0, 7.5), policy_actions("random", 50, 1, 7.5))
    np.save(tmp_path / "a.npy", np.array([[0.1, 2.0]]))
    assert load_actions(tmp_path / "a.npy", 3).tolist() == [[pytest.approx(0.1), 1.0]] * 3
    (tmp_path / "b.json").write_text("[[0.1, NaN]]")
    with pytest.raises(ValueError, match="NaN"):
        load_actions(tmp_path / "b.json", 2)


def test_generate_shards_scenarios_by_rank_under_torchrun(tmp_path, model):
    import os
    import subprocess
    import sys

    lst = tmp_path / "s.yaml"
    lst.write_text("".join(f"- {{out: {tmp_path}/v{i}.mp4, minutes: 0.01, seed: {i}}}\n" for i in range(3)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "drivesim.cli.main", "generate", f"model={model}", f"scenarios={lst}", FAST, *FAST2]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, capture_output=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rows = manifest["scenarios"]
    assert [r["index"] for r in rows] == [0, 1, 2] and [r["rank"] for r in rows] == [0, 1, 0]
    assert all((tmp_path / f"v{i}.mp4").exists() for i in range(3))
    assert not list(tmp_path.glob("manifest.rank*.json"))  # parts merged and removed


def test_generate_closed_loop_driver_records_actions_pose_and_storyboard_times(tmp_path):
    from drivesim.rollout.random_model import RandomModelSpec

    model = build_random_model(tmp_path / "m", RandomModelSpec(pose_heads=True))
    out = tmp_path / "drive.mp4"
    # 0.1 min = 45 steps at 7.5 steps/s: the lane change at 4 s (step 30) is commanded
    args = ["generate", f"model={model}", "minutes=0.1", f"out={out}", "policy=keeper_lane_change_brake",
            "storyboard_seconds=[0.0,4.0,6.0]", FAST, *FAST2]
    assert main(args) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    actions = np.asarray(summary["actions_per_step"]["values"])
    assert actions.shape == (45, 2) and np.isfinite(actions).all() and np.abs(actions).max() <= 1
    assert len(set(actions[:, 0].round(4).tolist())) > 1  # steered on the pose reading, not a constant script
    assert len(summary["pose_per_step"]["values"]) == 45 and summary["lane_changes_commanded"] == 1
    assert summary["scenario"]["storyboard_seconds"] == [0.0, 4.0, 6.0]


def test_generate_closed_loop_errors(tmp_path, model, capsys):
    out = tmp_path / "d.mp4"
    assert main(["generate", f"model={model}", "minutes=0.01", f"out={out}", "policy=keeper", FAST, *FAST2]) == 1
    assert "no pose output" in capsys.readouterr().err  # the default random model has no pose heads
    bad = ["generate", f"model={model}", "minutes=0.01", f"out={out}", "storyboard_seconds=[9.0]", FAST, *FAST2]
    assert main(bad) == 1
    assert "storyboard_seconds=[9.0]" in capsys.readouterr().err
