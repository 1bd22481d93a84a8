"""benchmarks/env_speed.py: `measure` on a tiny random model times every stage and leaves the engine as it was."""

import pytest

from tests.benchmarks import load_benchmark


def test_measure_times_each_stage_of_batched_steps(engine):
    bench = load_benchmark("env_speed")
    run = bench.measure(engine, num_envs=2, steps=1, warmup=0)
    assert run["num_envs"] == 2 and run["frames_per_s"] > 0
    assert run["frames_per_s"] == pytest.approx(run["env_steps_per_s"] * engine.frames_per_step)
    assert set(run["stage_seconds_per_step"]) == {"predict", "fill", "decode", "rewards"}
    assert all(v > 0 for v in run["stage_seconds_per_step"].values())
    assert not {"predict", "fill", "decode"} & set(vars(engine)) and "read" not in vars(engine.reader)
