"""benchmarks/video_ldm_quality.py: the clips section end to end on a random model and random probes (--random
--quick), with its traffic curve and the number of storyboard clips."""

import json
import sys

import pytest

from tests.benchmarks import load_benchmark


def test_the_clips_section_writes_the_traffic_curve_and_its_plot(tmp_path, monkeypatch):
    module = load_benchmark("video_ldm_quality")
    out = tmp_path / "vq"
    monkeypatch.setattr(sys, "argv", ["video_ldm_quality.py", "--random", "--quick", "--threads", "1", "--out",
                                      str(out), "--skip", "actions", "long", "interpolation", "--storyboard-clips",
                                      "2", "--keyframe-crowdedness-guidance", "3"])  # fmt: skip
    module.main()
    result = json.loads((out / "quality.json").read_text())
    traffic = result["clips"]["traffic"]
    frames = result["clips"]["frames_per_clip"]
    bins = -(-frames // round(result["clips"]["fps"] * traffic["bin_seconds"]))  # ceil: the last bin may be short
    assert len(traffic["generated"]) == bins and len(traffic["real"]) == bins
    assert set(traffic["generated_by_level"]) == {"low", "medium", "high"}  # the 4 quick clips cycle the labels
    assert all(v >= 0 for v in traffic["generated"] + traffic["real"])
    assert result["engine"]["keyframe_crowdedness_guidance"] == 3.0
    assert (out / "clips_traffic.png").stat().st_size > 1000 and (out / "clips_storyboard.png").exists()
    assert result["clips"]["condition"]["crowdedness_read"] is not None


def test_bad_storyboard_clips_is_refused(tmp_path, monkeypatch):
    module = load_benchmark("video_ldm_quality")
    monkeypatch.setattr(sys, "argv", ["video_ldm_quality.py", "--random", "--quick", "--out", str(tmp_path),
                                      "--storyboard-clips", "0"])  # fmt: skip
    with pytest.raises(SystemExit, match="storyboard_clips=0"):
        module.main()
