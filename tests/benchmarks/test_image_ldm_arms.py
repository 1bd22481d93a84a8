"""benchmarks/image_ldm_arms.py: per-arm summaries and paired per-seed differences of --seeds runs."""

import json
from pathlib import Path

import pytest

from tests.benchmarks import load_benchmark


def _quality(folder: Path, recall: dict[int, float], model: Path | None = None) -> Path:
    points = {
        str(s): {"box_recall": r, "crowdedness_accuracy": 0.9, "time_of_day_accuracy": 1.0, "fid_probe": 2.0 + s}
        for s, r in recall.items()
    }
    folder.mkdir(parents=True)
    first = next(iter(points.values()))
    body = {"model": str(model or folder / "gone"), "box_conditioning": "layout", "points": points, "point": first}
    (folder / "quality.json").write_text(json.dumps(body))
    return folder


def test_paired_differences_and_training_record(tmp_path):
    arms = load_benchmark("image_ldm_arms")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.yaml").write_text(
        "image_ldm:\n  config: {unet: {box_conditioning: tokens}}\n  extra: {steps: 3000, cpu_minutes: 21.5}\n"
    )
    a = _quality(tmp_path / "a", {2: 0.50, 3: 0.60, 4: 0.70})
    b = _quality(tmp_path / "b", {2: 0.55, 3: 0.62, 5: 0.90}, model=model)
    report = arms.main(["--arm", f"a={a}", "--arm", f"b={b}", "--reference", "a", "--out", str(tmp_path / "o")])
    diff = report["paired_differences"]["b"]["box_recall"]
    assert list(diff["values"]) == [2, 3]  # only the seeds both arms have
    assert diff["mean"] == pytest.approx(0.035)
    assert report["paired_differences"]["b"]["fid_probe"]["mean"] == pytest.approx(0.0)
    assert report["arms"]["a"]["summary"]["box_recall"]["mean"] == pytest.approx(0.6)
    assert report["arms"]["b"]["training"] == {"steps": 3000, "cpu_minutes": 21.5, "box_conditioning": "tokens"}
    assert report["arms"]["a"]["training"] == {}
    assert (tmp_path / "o" / "arms.png").stat().st_size > 0
    assert json.loads((tmp_path / "o" / "arms.json").read_text())["reference"] == "a"


def test_bad_arms_are_named(tmp_path, capsys):
    arms = load_benchmark("image_ldm_arms")
    a = _quality(tmp_path / "a", {2: 0.5})
    with pytest.raises(SystemExit):
        arms.main(["--arm", "noequals"])
    assert "expected NAME=DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        arms.main(["--arm", f"a={tmp_path / 'missing'}"])
    assert "quality.json not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        arms.main(["--arm", f"a={a}", "--arm", f"a={a}"])
    assert "must be distinct" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        arms.main(["--arm", f"a={a}", "--reference", "z"])
    assert "not one of the arms" in capsys.readouterr().err
    c = _quality(tmp_path / "c", {7: 0.5})
    with pytest.raises(ValueError, match="shares no seed"):
        arms.main(["--arm", f"a={a}", "--arm", f"c={c}", "--out", str(tmp_path / "o")])
