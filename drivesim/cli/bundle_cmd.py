"""`drivesim bundle src=FOLDER out=FOLDER`: one model folder from the stages of trained ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass
from drivesim.model_bundle import BundleSummary, bundle_stages
from drivesim.model_folder import read_folder_config


@dataclass
class BundleConfig:
    src: str = "???"
    out: str = "???"
    stages: list[str] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    half: bool = True
    max_megabytes: float = 60.0


def plan(config: BundleConfig) -> dict[str, str]:
    """stage -> source folder, checked before anything is written."""
    present = sorted(read_folder_config(Path(config.src)))
    stages = present if config.stages is None else list(config.stages)
    unknown = sorted(set(stages) - set(present) - set(config.sources))
    if unknown:
        raise ValueError(f"stages {unknown} are not in src={config.src!r} (it has {present}) nor in sources")
    sources = {s: config.src for s in stages}
    sources.update(config.sources)
    if not sources:
        raise ValueError(f"nothing to bundle: src={config.src!r} has no stages and sources is empty")
    return sources


def run_bundle(cfg: DictConfig) -> BundleSummary:
    config: BundleConfig = to_dataclass(cfg, BundleConfig)
    if config.max_megabytes <= 0:
        raise ValueError(f"max_megabytes={config.max_megabytes} must be > 0")
    summary = bundle_stages(plan(config), config.out, half=config.half)
    size = summary.megabytes
    for stage, n in summary.parameters.items():
        print(f"  {stage:<20} {n / 1e6:6.2f}M parameters")
    print(f"bundle: {len(summary.stages)} stages, {size:.1f} MB -> {config.out}")
    if size > config.max_megabytes:
        raise ValueError(f"bundle {config.out} is {size:.1f} MB, over max_megabytes={config.max_megabytes}")
    return summary
