"""Probes in a model folder: stages `frame_probe` and `clip_probe` (DESIGN.md §4 checkpoint form), and
optionally `action_probe`: a clip probe fine-tuned to read the ego actions (`experiment=default/action_probe`),
which action adherence uses instead of the clip probe, while FVD-probe features, labels and speed stay
with `clip_probe` (so their figures do not move)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.model_folder import config_from_dict, has_stage, load_stage, save_stage

FRAME_STAGE = "frame_probe"
CLIP_STAGE = "clip_probe"
ACTION_STAGE = "action_probe"
# what an action probe must share with the clip probe: the windows it reads
WINDOW_FIELDS = ("num_frames", "frame_stride", "fps")


@dataclass
class Probes:
    frame: FrameProbe
    clip: ClipProbe
    action: ClipProbe | None = None  # reads [steer, accel] where present (same windows as `clip`)

    def __post_init__(self) -> None:
        if self.action is not None:
            bad = [f for f in WINDOW_FIELDS if getattr(self.action.config, f) != getattr(self.clip.config, f)]
            if bad:
                raise ValueError(
                    f"the action probe's {bad} differ from the clip probe's; it must read the same windows "
                    f"({', '.join(f'{f}={getattr(self.clip.config, f)}' for f in bad)})"
                )

    @property
    def action_reader(self) -> ClipProbe:
        """The clip probe that reads ego actions: `action` where present, else `clip`."""
        return self.clip if self.action is None else self.action

    def _modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.frame, self.clip, self.action) if m is not None]

    def to(self, device: str | torch.device) -> Probes:
        for m in self._modules():
            m.to(device)
        return self

    def eval(self) -> Probes:
        for m in self._modules():
            m.eval()
        return self


def save_probes(
    folder: str | Path,
    probes: Probes,
    extra: dict[str, Any] | None = None,
    frame_extra: dict[str, Any] | None = None,
) -> Path:
    """Write the probe stages into `folder` (config.yaml + a safetensors file each); `extra` goes with
    every stage unless the frame probe has its own `frame_extra`."""
    folder = Path(folder)
    frame_extra = extra if frame_extra is None else frame_extra
    save_stage(folder, FRAME_STAGE, probes.frame, probes.frame.config, extra=frame_extra)
    save_stage(folder, CLIP_STAGE, probes.clip, probes.clip.config, extra=extra)
    if probes.action is not None:
        save_stage(folder, ACTION_STAGE, probes.action, probes.action.config, extra=extra)
    return folder


def load_probes(folder: str | Path, device: str = "cpu") -> Probes:
    """Load the probes of a model folder (the action probe where it has one), in eval mode."""
    folder = _probes_folder(folder)
    action = _load_clip_probe(folder, ACTION_STAGE) if has_stage(folder, ACTION_STAGE) else None
    return (
        Probes(frame=load_frame_probe(folder), clip=_load_clip_probe(folder, CLIP_STAGE), action=action)
        .to(device)
        .eval()
    )


def _load_clip_probe(folder: Path, stage: str) -> ClipProbe:
    rec = load_stage(folder, stage)
    clip = ClipProbe(config_from_dict(ClipProbeConfig, rec.config, f"{folder}/{stage}"))
    try:
        clip.load_state_dict(rec.state_dict)
    except RuntimeError as err:
        raise ValueError(
            f"{folder}/{stage} does not match the current clip probe (pair encoder + temporal head); "
            f"probes trained before it need retraining: drivesim train stage=probes ({err})"
        ) from err
    return clip


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
