"""benchmarks/default_model_speed.py: FLOPs per stage and step timings on a tiny random model, and the engine's
stage methods restored after each."""

import pytest

from drivesim.rollout.engine_api import EngineConfig
from tests.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("default_model_speed")


def assert_unwrapped(engine):
    assert not {"predict", "fill", "decode", "upsample"} & set(vars(engine))  # the class's methods again
    assert "read" not in vars(engine.reader)


def test_count_flops_reads_every_stage_and_restores_the_engine(bench, engine):
    flops = bench.count_flops(engine)
    assert set(flops) == {"keyframes", "interpolation", "decode", "upsample", "rewards"}
    assert flops["keyframes"] > 0 and flops["interpolation"] > 0 and flops["decode"] > 0
    assert flops["upsample"] == 0  # the upsampler is off: the identity
    assert flops["rewards"] > 0  # the reward heads read every step
    assert_unwrapped(engine)


def test_time_steps_times_the_stages_and_restores_the_engine(bench, engine):
    row = bench.Row("default", 2, "float32", steps=1, warmup_steps=0, warmup_s=0.0)
    bench.time_steps(engine, row)
    assert row.frames_per_s > 0 and row.step_s_median > 0
    assert set(row.stage_s_per_step) == {"predict", "fill", "decode", "rewards"}
    assert all(v > 0 for v in row.stage_s_per_step.values())
    assert_unwrapped(engine)


def test_stage_hooks_refuse_an_unknown_stage(bench, engine):
    with pytest.raises(ValueError, match="unknown"):
        bench.StageHooks(engine, lambda label, fn, *a, **kw: fn(*a, **kw), ("predict", "render"))
    assert_unwrapped(engine)


def test_the_envs_own_setting_is_a_variant(bench):
    chosen = {v.name: v.config for v in bench.variants(EngineConfig(), 4, 2)}
    env_setting = chosen["steps_k4_i2_bfloat16"]
    assert (env_setting.keyframe_steps, env_setting.interpolation_steps, env_setting.dtype) == (4, 2, "bfloat16")
    assert chosen["steps_k4_i2"].dtype == "float32"
