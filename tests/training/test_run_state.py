import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from drivesim.training.run_state import RunCheckpointer

SCRIPT = Path(__file__).with_name("_resume_script.py")


def _run(run_dir, total, delay):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), str(total), str(delay)])


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    total = 30
    ref = tmp_path / "ref"
    assert _run(ref, total, 0.0).wait(timeout=120) == 0

    killed = tmp_path / "killed"
    proc = _run(killed, total, 0.05)
    ckpt = RunCheckpointer(killed)
    deadline = time.time() + 120
    while time.time() < deadline and not any(int(p.name[5:]) >= 8 for p in ckpt.checkpoints()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "final_ema.pt").exists(), "process finished before it was killed"
    # retention prunes after each save; a kill between the rename and the pruning leaves keep + 1
    assert len(ckpt.checkpoints()) <= 3
    assert _run(killed, total, 0.0).wait(timeout=120) == 0

    a = torch.load(ref / "final_ema.pt")
    b = torch.load(killed / "final_ema.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (killed / "final_position.txt").read_text() == (ref / "final_position.txt").read_text()


def test_corrupt_latest_falls_back_to_previous(tmp_path):
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ck = RunCheckpointer(tmp_path, keep=3)
    ck.save(1, {"m": model}, {"o": opt}, extra={"pos": 1})
    with torch.no_grad():
        model.weight.add_(1.0)
    ck.save(2, {"m": model}, {"o": opt}, extra={"pos": 2})
    latest = ck.checkpoints()[-1]
    data = (latest / "m.safetensors").read_bytes()
    (latest / "m.safetensors").write_bytes(data[: len(data) // 2])  # truncated file
    fresh = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="corrupt checkpoint"):
        restored = ck.restore({"m": fresh}, {"o": torch.optim.SGD(fresh.parameters(), lr=0.1)})
    assert restored is not None and restored.step == 1 and restored.extra == {"pos": 1}


def test_missing_state_json_is_skipped_and_none_when_empty(tmp_path):
    ck = RunCheckpointer(tmp_path)
    model = nn.Linear(1, 1)
    assert ck.restore({"m": model}, {}) is None
    ck.save(5, {"m": model}, {})
    (ck.checkpoints()[-1] / "state.json").unlink()
    with pytest.warns(UserWarning):
        assert ck.restore({"m": model}, {}) is None


def test_optimizer_state_roundtrip(tmp_path):
    model = nn.Linear(3, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    RunCheckpointer(tmp_path).save(1, {"m": model}, {"o": opt})
    model2 = nn.Linear(3, 1)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=5.0)
    RunCheckpointer(tmp_path).restore({"m": model2}, {"o": opt2})
    assert opt2.param_groups[0]["lr"] == 1e-3
    s1, s2 = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert torch.equal(s1["exp_avg"], s2["exp_avg"]) and torch.equal(s1["step"], s2["step"])
    state = json.loads((RunCheckpointer(tmp_path).checkpoints()[-1] / "state.json").read_text())
    assert state["step"] == 1
