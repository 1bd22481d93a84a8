"""Bundle stages from several model folders into one (the shipped default is made this way).

Training writes each stage into a model folder; a bundle copies chosen stages (weights and
their `config.yaml` entry) into one folder, optionally storing floating tensors as float16
(`load_stage` gives them back as float32), and records where every stage came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from drivesim.data.atomic import atomic_write_text
from drivesim.model_folder import atomic_save_tensors, folder_lock, load_stage, read_folder_config

__all__ = ["BundleSummary", "bundle_stages", "folder_megabytes"]


@dataclass(frozen=True)
class BundleSummary:
    out: Path
    stages: list[str]
    megabytes: float
    parameters: dict[str, int]


def folder_megabytes(folder: Path) -> float:
    """Size of every file in `folder` (not recursive), in MB (1e6 bytes)."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file() and p.name != ".lock") / 1e6


def bundle_stages(sources: dict[str, str | Path], out: str | Path, half: bool = True) -> BundleSummary:
    """Copy `stage -> source folder` into `out`; half=True stores float tensors as float16.

    Stages already in `out` that are not named are kept; named ones are replaced.
    """
    if not sources:
        raise ValueError("sources is empty; give stage=folder pairs, e.g. {'autoencoder': 'runs/models/ae'}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params: dict[str, int] = {}
    entries: dict[str, dict] = {}
    for stage, src in sources.items():
        record = load_stage(Path(src), stage)  # FileNotFoundError names the stages present
        state = record.state_dict
        if half:
            state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        params[stage] = int(sum(v.numel() for v in state.values() if v.is_floating_point()))
        atomic_save_tensors(out / f"{stage}.safetensors", state, metadata={"stage": stage})
        extra = dict(record.extra)
        extra["bundled_from"] = str(src)
        extra["stored_dtype"] = str(torch.float16 if half else torch.float32).removeprefix("torch.")
        entries[stage] = {"config": record.config, "extra": extra}
    with folder_lock(out):
        config = read_folder_config(out)
        config.update(entries)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    return BundleSummary(out=out, stages=list(sources), megabytes=folder_megabytes(out), parameters=params)
