"""Tiny DDP training run used by test_distributed (launched with and without torchrun)."""

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from drivesim.training.distributed import (
    all_reduce_mean,
    cleanup,
    init_distributed,
    shard_batch_indices,
    unwrap,
    wrap_ddp,
)

out = Path(sys.argv[1])
info = init_distributed("cpu")
torch.set_num_threads(1)
torch.manual_seed(0)  # same init on every rank (DDP also broadcasts rank 0's weights)
data_g = torch.Generator().manual_seed(1)
x = torch.randn(64, 6, generator=data_g)
y = (x @ torch.randn(6, 1, generator=data_g)).tanh()
model = wrap_ddp(nn.Sequential(nn.Linear(6, 16), nn.SiLU(), nn.Linear(16, 1)), info)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
for step in range(10):
    idx = shard_batch_indices(64, global_batch=16, step=step, info=info, seed=3)
    loss = ((model(x[idx]) - y[idx]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(all_reduce_mean(loss, info)))
weights = {k: v.tolist() for k, v in unwrap(model).state_dict().items()}
(out / f"rank{info.rank}.json").write_text(json.dumps({"losses": losses, "weights": weights}))
cleanup(info)
# Leave without interpreter finalization: on a loaded machine gloo's worker threads can still be
# torn down there after destroy_process_group and abort the process (SIGABRT, "terminate called
# without an active exception"), failing torchrun after the results are already written.
sys.stdout.flush()
os._exit(0)
