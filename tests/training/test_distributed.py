import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drivesim.training.distributed import DistInfo, autocast, shard, shard_batch_indices

SCRIPT = Path(__file__).with_name("_ddp_script.py")


def _info(rank, world):
    return DistInfo(rank=rank, local_rank=rank, world_size=world, device=torch.device("cpu"))


def test_shards_partition_the_single_process_batch():
    one = shard_batch_indices(100, 12, step=5, info=_info(0, 1), seed=0)
    parts = [shard_batch_indices(100, 12, step=5, info=_info(r, 3), seed=0) for r in range(3)]
    assert sum(parts, []) == one
    assert shard(list(range(7)), _info(1, 3)) == [1, 4]
    with pytest.raises(ValueError, match="divisible"):
        shard_batch_indices(100, 10, 0, _info(0, 3), 0)


def test_autocast_rejects_fp16_on_cpu():
    with pytest.raises(ValueError, match="fp16"):
        with autocast(torch.device("cpu"), "fp16"):
            pass
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_two_gloo_ranks_match_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    subprocess.run([sys.executable, str(SCRIPT), str(single)], check=True, env=env, timeout=120)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT)]
    subprocess.run([*cmd, str(multi)], check=True, env=env, timeout=180)
    r0 = json.loads((multi / "rank0.json").read_text())
    r1 = json.loads((multi / "rank1.json").read_text())
    ref = json.loads((single / "rank0.json").read_text())
    for k in ref["weights"]:
        assert np.array_equal(np.array(r0["weights"][k]), np.array(r1["weights"][k])), k
        np.testing.assert_allclose(np.array(r0["weights"][k]), np.array(ref["weights"][k]), atol=1e-5)
    np.testing.assert_allclose(r0["losses"], ref["losses"], rtol=1e-4)
    assert ref["losses"][-1] < ref["losses"][0]
