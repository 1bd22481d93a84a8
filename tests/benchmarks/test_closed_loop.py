"""benchmarks/closed_loop.py on a random model: the closed-loop accel-hold reading runs end to end."""

import json

import numpy as np
import yaml

from drivesim.rollout.random_model import RandomModelSpec, build_random_model
from tests.benchmarks import load_benchmark


def test_accel_holds_reads_the_world_and_the_model_against_the_same_told_accel(tmp_path):
    bench = load_benchmark("closed_loop")
    video_eval = load_benchmark("_video_eval")
    model = build_random_model(tmp_path / "model", RandomModelSpec(pose_heads=True))
    h, w = yaml.safe_load((model / "config.yaml").read_text()).get("autoencoder", {}).get("image_size", [64, 128])
    calibration = np.random.default_rng(0).integers(0, 256, (2, 12, h, w, 3), dtype=np.uint8)
    probes = video_eval.random_probes(tmp_path / "probes", calibration, h, w)
    out = tmp_path / "out"
    argv = ["--model", str(model), "--pose-from", str(model), "--probes", str(probes), "--starts", "2",
            "--seconds", "1.5", "--warmup", "0.2", "--keyframe-steps", "1", "--threads", "1", "--accel-holds",
            "--hop", "2", "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((out / "closed_loop.json").read_text())["accel_holds"]
    assert set(report) == {"world", f"{model} (keeper)"}
    world, rolled = report["world"], report[f"{model} (keeper)"]
    assert world["windows"] == rolled["windows"] > 0  # the same frames' worth of probe windows per source
    assert world["commanded_accel_std"] > 0  # the holds vary the told accel
