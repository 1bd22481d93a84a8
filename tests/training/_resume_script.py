"""Training loop used by test_run_state: deterministic, checkpoints every step."""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from drivesim.training.ema import EMA
from drivesim.training.run_state import RunCheckpointer

run_dir, total, delay = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
np.random.seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
ema = EMA(model, decay=0.9)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
ckpt = RunCheckpointer(run_dir, keep=2)
restored = ckpt.restore({"model": model, "ema": ema}, {"opt": opt})
step = restored.step if restored else 0
position = restored.extra["position"] if restored else 0
while step < total:
    x = torch.randn(32, 8)  # global torch RNG: must be restored for an identical run
    noise = float(np.random.randn())  # global numpy RNG: likewise
    loss = ((model(x) - x.sum(1, keepdim=True) - noise) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    ema.update(model)
    step += 1
    position += 32
    ckpt.save(step, {"model": model, "ema": ema}, {"opt": opt}, extra={"position": position})
    time.sleep(delay)
torch.save({k: v for k, v in ema.module.state_dict().items()}, run_dir / "final_ema.pt")
(run_dir / "final_position.txt").write_text(str(position))
