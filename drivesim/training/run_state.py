"""Resumable training state: step, modules, optimizers, RNG and data position.

Layout: `run_dir/checkpoints/step_00000100/` holding `<name>.safetensors` per module,
`<name>.optim.safetensors` + the JSON part of each optimizer, `rng.safetensors`, and
`state.json` (step, extra, RNG of numpy/python, sha256 of every file). A checkpoint is
written into a hidden temp folder and renamed into place, so a SIGKILL at any moment
leaves either the complete checkpoint or none. On restore, checkpoints are tried newest
first; one whose files are missing or whose checksums differ is skipped with a warning.
Only the `keep` newest checkpoints are retained.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

_PREFIX = "step_"


@dataclass(frozen=True)
class Restored:
    step: int
    extra: dict[str, Any]
    path: Path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as (tensors, JSON-able rest)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        plain_state[str(idx)] = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value.detach().contiguous().cpu()
            else:
                plain_state[str(idx)][name] = value
    return tensors, {"state": plain_state, "param_groups": sd["param_groups"]}


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in rest["state"].items()}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def _numpy_rng_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


class RunCheckpointer:
    """Save and restore the full training state of one run (rank 0 writes)."""

    def __init__(self, run_dir: Path, keep: int = 3, enabled: bool = True) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep} must be >= 1")
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = keep
        self.enabled = enabled

    def checkpoints(self) -> list[Path]:
        """Completed checkpoint folders, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)]
        return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))

    def save(
        self,
        step: int,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        extra: dict[str, Any] | None = None,
    ) -> Path | None:
        if not self.enabled:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{_PREFIX}{step:08d}"
        tmp = self.dir / f".tmp_{_PREFIX}{step:08d}_{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        optim_json: dict[str, Any] = {}
        for name, module in modules.items():
            state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
            save_file(state, str(tmp / f"{name}.safetensors"))
        for name, opt in optimizers.items():
            tensors, rest = _split_optimizer(opt)
            save_file(tensors, str(tmp / f"{name}.optim.safetensors"))
            optim_json[name] = rest
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                rng[f"cuda{i}"] = s
        save_file(rng, str(tmp / "rng.safetensors"))
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        state = {
            "step": int(step),
            "extra": extra or {},
            "optimizers": optim_json,
            "numpy_rng": _numpy_rng_state(),
            "python_rng": json.loads(json.dumps(random.getstate())),
            "files": files,
        }
        with open(tmp / "state.json", "w") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in self.checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _verify(self, path: Path) -> dict[str, Any]:
        state_file = path / "state.json"
        if not state_file.exists():
            raise ValueError("state.json missing")
        state = json.loads(state_file.read_text())
        for name, digest in state["files"].items():
            f = path / name
            if not f.exists():
                raise ValueError(f"{name} missing")
            if _sha256(f) != digest:
                raise ValueError(f"{name} checksum mismatch")
        return state

    def restore(
        self, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
    ) -> Restored | None:
        """Load the newest valid checkpoint into `modules`/`optimizers` in place; None if none."""
        for path in reversed(self.checkpoints()):
            try:
                state = self._verify(path)
            except (ValueError, OSError, json.JSONDecodeError, KeyError) as exc:
                warnings.warn(f"skipping corrupt checkpoint {path}: {exc}", stacklevel=2)
                continue
            for name, module in modules.items():
                module.load_state_dict(load_file(str(path / f"{name}.safetensors")))
            for name, opt in optimizers.items():
                tensors = load_file(str(path / f"{name}.optim.safetensors"))
                opt.load_state_dict(_join_optimizer(tensors, state["optimizers"][name]))
            rng = load_file(str(path / "rng.safetensors"))
            torch.set_rng_state(rng["torch"])
            if torch.cuda.is_available():
                cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
                if cuda:
                    torch.cuda.set_rng_state_all(cuda)
            name, keys, pos, has_gauss, cached = state["numpy_rng"]
            np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
            py = state["python_rng"]
            random.setstate((py[0], tuple(py[1]), py[2]))
            return Restored(step=int(state["step"]), extra=state["extra"], path=path)
        return None
