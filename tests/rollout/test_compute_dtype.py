"""`EngineConfig.dtype`: explicit names pass, "auto" follows the hardware check, bad names are refused,
and a bfloat16 engine runs and stays near the float32 one."""

import numpy as np
import pytest
import torch

from drivesim.rollout import compute_dtype
from drivesim.rollout.compute_dtype import native_bf16, resolve_dtype
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from tests.rollout.conftest import FAST


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
def test_explicit_dtypes_pass_through(name):
    assert resolve_dtype(name, torch.device("cpu")) == name


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cpu_check(monkeypatch, native):
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda: native, raising=False)
    assert native_bf16(torch.device("cpu")) is native
    assert resolve_dtype("auto", torch.device("cpu")) == ("bfloat16" if native else "float32")


def test_auto_on_a_device_without_bf16_is_float32():
    assert resolve_dtype("auto", torch.device("meta")) == "float32"


@pytest.mark.parametrize("bad", ["fp16", "float16", "bf16", ""])
def test_bad_dtype_names_the_allowed(bad):
    with pytest.raises(ValueError, match="allowed: \\['float32', 'bfloat16', 'auto'\\]"):
        resolve_dtype(bad, torch.device("cpu"))


def test_engine_resolves_auto_and_bfloat16_stays_near_float32(model_dir, monkeypatch):
    world = load(model_dir)
    monkeypatch.setattr(compute_dtype, "native_bf16", lambda device: True)
    auto = LearnedEngine(world, EngineConfig(dtype="auto", **FAST))
    assert auto.compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="dtype='half'"):
        LearnedEngine(world, EngineConfig(dtype="half", **FAST))
    frames = {}
    for name in ("float32", "bfloat16"):
        engine = LearnedEngine(world, EngineConfig(dtype=name, **FAST))
        state = engine.start([SceneRequest(0, 1, seed=3)]).state
        out = engine.step(state, np.array([[0.3, 0.0]], np.float32))
        frames[name] = out.frames.astype(np.float32)
    diff = np.abs(frames["float32"] - frames["bfloat16"])
    assert diff.max() > 0  # the autocast path ran
    assert diff.mean() < 3  # of 255 (0.75 when written): the same rollout, in bfloat16's precision

