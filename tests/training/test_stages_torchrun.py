"""Every training stage, 2 steps each, under torchrun with 2 gloo CPU processes (one launch for all)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("_stage_script.py")
_spec = importlib.util.spec_from_file_location("_stage_script", SCRIPT)
stage_script = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("_stage_script", stage_script)  # its dataclasses look their module up
_spec.loader.exec_module(stage_script)
STAGES = stage_script.STAGES


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepare the inputs here, then run every stage under torchrun; returns the root folder."""
    root = tmp_path_factory.mktemp("stages_torchrun")
    stage_script.prepare(root / "work")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT)]
    done = subprocess.run(
        [*cmd, str(root / "work"), str(root / "out")], env=env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return root


def _ranks(root: Path, stage: str) -> list[dict]:
    return [json.loads((root / "out" / f"rank{r}" / f"{stage}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("stage", STAGES)
def test_both_ranks_end_with_identical_weights_and_rank0_wrote_the_checkpoint(launched: Path, stage: str) -> None:
    r0 = load_file(str(launched / "out" / "rank0" / f"{stage}.safetensors"))
    r1 = load_file(str(launched / "out" / "rank1" / f"{stage}.safetensors"))
    assert len(r0) > 0 and r0.keys() == r1.keys()  # the stage trained some parameters
    for key in r0:
        assert torch.equal(r0[key], r1[key]), f"{stage}: {key} differs between ranks"
    expected = stage_script.outputs(launched / "work", stage)
    assert (expected.checkpoint / "state.json").is_file(), f"{stage}: no step-2 checkpoint"
    for weights in expected.weights:
        assert weights.is_file(), f"{stage}: {weights.name} not exported"
    assert any(Path(w).parent.name.startswith(".tmp_step_00000002") for w in _ranks(launched, stage)[0]["writes"])


@pytest.mark.parametrize("stage", STAGES)
def test_stage_syncs_gradients_and_only_rank0_writes(launched: Path, stage: str) -> None:
    rank0, rank1 = _ranks(launched, stage)
    assert rank0["ddp_wrappers"] >= 1 and rank1["ddp_wrappers"] == rank0["ddp_wrappers"]
    assert rank0["writes"] and rank1["writes"] == []


def test_autoencoder_shard_checkpoint_holds_every_ranks_stream_position(launched: Path) -> None:
    checkpoint = stage_script.outputs(launched / "work", "autoencoder_shards").checkpoint
    state = json.loads((checkpoint / "state.json").read_text())
    # 2 steps of batch_size=2: one frame a step from each rank's own train shard
    assert state["extra"]["shard_positions"] == [{"epoch": 0, "batch": 2}, {"epoch": 0, "batch": 2}]
