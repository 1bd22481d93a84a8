"""Model folders: `config.yaml` plus one `<stage>.safetensors` per stage (DESIGN.md §4).

A model folder is what `drivesim.load(path)` reads and what the bundled default is.
Every write is atomic (temp file + os.replace): an interrupted save never leaves a
half-written stage behind. Only safetensors and YAML are read: loading cannot run code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from drivesim.data.atomic import atomic_path, atomic_write_text

__all__ = [
    "StageRecord",
    "atomic_save_tensors",
    "config_from_dict",
    "config_to_dict",
    "folder_lock",
    "has_stage",
    "load_stage",
    "read_folder_config",
    "save_stage",
    "stage_state",
]


def atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """safetensors.save_file through a temp file + os.replace."""
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=metadata)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass (or dict) config as plain YAML-safe data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dataclass instance or dict, got {type(config).__name__}")
    return _plain(config)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise TypeError(f"config value {obj!r} of type {type(obj).__name__} is not YAML-safe")


@dataclass(frozen=True)
class StageRecord:
    """One stage of a model folder."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    extra: dict[str, Any]


def read_folder_config(folder: Path) -> dict[str, Any]:
    """The parsed `config.yaml` of a model folder ({} when absent)."""
    path = Path(folder) / "config.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping of stage -> {{config, extra}}, got {type(data).__name__}"
        )
    return data


def save_stage(
    folder: Path,
    stage: str,
    module: nn.Module | Mapping[str, torch.Tensor],
    config: Any,
    extra: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write `folder/<stage>.safetensors` (a module's state dict, or the tensors given) and record
    config/extra under `stage` in config.yaml.

    half=True stores floating tensors as float16 (they load back as float32).
    """
    folder = Path(folder)
    if not stage.isidentifier():
        raise ValueError(f"stage={stage!r} must be an identifier (letters, digits, underscores)")
    state = module.state_dict() if isinstance(module, nn.Module) else dict(module)
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    weights = folder / f"{stage}.safetensors"
    atomic_save_tensors(weights, state, metadata={"stage": stage})
    entry = {"config": config_to_dict(config), "extra": _plain(extra or {})}
    with folder_lock(folder):  # two stages exporting at once must not drop each other's entry
        all_cfg = read_folder_config(folder)
        all_cfg[stage] = entry
        atomic_write_text(folder / "config.yaml", yaml.safe_dump(all_cfg, sort_keys=False))
    return weights


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock (flock on `folder/.lock`) around a read-modify-write of config.yaml."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_stage(folder: Path, stage: str) -> StageRecord:
    """Read one stage; floating tensors come back as float32."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    all_cfg = read_folder_config(folder)
    weights = folder / f"{stage}.safetensors"
    if stage not in all_cfg or not weights.exists():
        have = sorted(p.stem for p in folder.glob("*.safetensors"))
        raise FileNotFoundError(f"{folder}: stage {stage!r} not found; stages present: {have}")
    entry = all_cfg[stage]
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{folder / 'config.yaml'}: stage {stage!r} needs a 'config' mapping")
    state = load_file(str(weights))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    return StageRecord(state_dict=state, config=entry["config"], extra=entry.get("extra") or {})


def stage_state(folder: Path, stage: str) -> dict[str, torch.Tensor]:
    """The state dict of one stage (floating tensors as float32)."""
    return load_stage(folder, stage).state_dict


def config_from_dict(cls: type, data: Any, where: str) -> Any:
    """A config dataclass from a plain mapping; unknown keys raise a ValueError naming them.

    Nested dataclass fields are built from nested mappings; lists become tuples where the
    field's default is a tuple.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} keys {unknown}; allowed: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def has_stage(folder: Path, stage: str) -> bool:
    folder = Path(folder)
    return (folder / f"{stage}.safetensors").exists() and stage in read_folder_config(folder)
