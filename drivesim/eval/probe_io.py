"""Probes in a model folder: stages `frame_probe` and `clip_probe` (DESIGN.md §4 checkpoint form)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.model_folder import config_from_dict, load_stage, save_stage

FRAME_STAGE = "frame_probe"
CLIP_STAGE = "clip_probe"


@dataclass
class Probes:
    frame: FrameProbe
    clip: ClipProbe

    def to(self, device: str | torch.device) -> Probes:
        self.frame.to(device)
        self.clip.to(device)
        return self

    def eval(self) -> Probes:
        self.frame.eval()
        self.clip.eval()
        return self


def save_probes(
    folder: str | Path,
    probes: Probes,
    extra: dict[str, Any] | None = None,
    frame_extra: dict[str, Any] | None = None,
) -> Path:
    """Write both probe stages into `folder` (config.yaml + two safetensors); `extra` goes with
    both stages unless the frame probe has its own `frame_extra`."""
    folder = Path(folder)
    frame_extra = extra if frame_extra is None else frame_extra
    save_stage(folder, FRAME_STAGE, probes.frame, probes.frame.config, extra=frame_extra)
    save_stage(folder, CLIP_STAGE, probes.clip, probes.clip.config, extra=extra)
    return folder


def load_probes(folder: str | Path, device: str = "cpu") -> Probes:
    """Load both probes from a model folder, in eval mode."""
    folder = _probes_folder(folder)
    clip_rec = load_stage(folder, CLIP_STAGE)
    clip = ClipProbe(config_from_dict(ClipProbeConfig, clip_rec.config, f"{folder}/{CLIP_STAGE}"))
    try:
        clip.load_state_dict(clip_rec.state_dict)
    except RuntimeError as err:
        raise ValueError(
            f"{folder}/{CLIP_STAGE} does not match the current clip probe (pair encoder + temporal head); "
            f"probes trained before it need retraining: drivesim train stage=probes ({err})"
        ) from err
    return Probes(frame=load_frame_probe(folder), clip=clip).to(device).eval()


def load_frame_probe(folder: str | Path) -> FrameProbe:
    """The frame probe of a probes folder alone, in eval mode on the CPU."""
    folder = _probes_folder(folder)
    rec = load_stage(folder, FRAME_STAGE)
    frame = FrameProbe(config_from_dict(FrameProbeConfig, rec.config, f"{folder}/{FRAME_STAGE}"))
    frame.load_state_dict(rec.state_dict)
    return frame.eval()


def _probes_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"probes folder {folder} does not exist (train with `drivesim train stage=probes`)")
    return folder
