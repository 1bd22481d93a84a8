"""benchmarks/vehicle_keep.py end to end on a tiny random model (two folders scored side by side), the bundled probe
reading its frames resized."""

import json
import sys

import pytest

from drivesim.rollout.random_model import build_random_model
from tests.benchmarks import load_benchmark


def test_two_models_are_scored_side_by_side_against_the_true_boxes(tmp_path, monkeypatch):
    module = load_benchmark("vehicle_keep")
    model = build_random_model(tmp_path / "model")
    out = tmp_path / "vk"
    monkeypatch.setattr(sys, "argv", ["vehicle_keep.py", "--model", str(model), "--model", str(model), "--clips", "3",
                                      "--steps", "2", "--batch", "2", "--keyframe-steps", "1", "--interpolation-steps",
                                      "1", "--threads", "1", "--storyboard-clips", "1", "--out", str(out)])  # fmt: skip
    module.main()
    report = json.loads((out / "vehicle_keep.json").read_text())
    assert report["keyframe_stride"] == 4 and len(report["seconds_ahead"]) == 2
    assert list(report["results"]) == ["true frames", "true, decoded", "0:model", "1:model"]
    for table in report["results"].values():
        assert set(table) == {"iou_0.5", "iou_0.3"}
        assert set(table["iou_0.5"]) == {"all", "low", "medium", "high"}  # 3 clips: one of each level
        scores = table["iou_0.5"]["all"]
        assert all(len(v) == 2 for v in scores.values())
        assert all(r is None or 0.0 <= r <= 1.0 for r in scores["recall"] + scores["precision"])
    same = report["results"]["0:model"]["iou_0.3"]["all"]
    assert same == report["results"]["1:model"]["iou_0.3"]["all"]  # the same folder and seed: the same frames
    assert (out / "vehicle_keep.png").stat().st_size > 1000 and (out / "vehicle_keep_storyboard.png").exists()


def test_bad_counts_are_refused(tmp_path, monkeypatch, capsys):
    module = load_benchmark("vehicle_keep")
    monkeypatch.setattr(sys, "argv", ["vehicle_keep.py", "--steps", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        module.main()
    assert "--steps 0: must be >= 1" in capsys.readouterr().err
