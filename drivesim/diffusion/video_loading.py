"""Build the image LDM and the video models from a model folder (DESIGN.md §4).

A model folder has `config.yaml` ({stage: {config, extra}}) and `<stage>.safetensors` per
stage. Only YAML and safetensors are read, so loading cannot run code.

Stage "image_ldm" (the spatial backbone theta) is read with this config layout:
    unet: UNetConfig fields;  schedule: ScheduleConfig fields;  target: "eps" | "v"
and a `SpatialUNet` state dict. The video stages ("video_ldm", "interpolation") hold the
same three entries plus `video` (VideoUNetConfig fields) and `window` (`VideoWindow`:
num_frames, frame_stride, and for interpolation the keyframe spacing), and a full
`VideoUNet` state dict (theta included, so a from-scratch model loads the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drivesim.diffusion.blend_residual import BlendShift
from drivesim.diffusion.parameterization import Target, check_target
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_unet import VideoUNet
from drivesim.diffusion.video_unet_config import VideoUNetConfig
from drivesim.model_folder import config_from_dict, load_stage

IMAGE_LDM_STAGE = "image_ldm"
VIDEO_LDM_STAGE = "video_ldm"
INTERPOLATION_STAGE = "interpolation"


@dataclass(frozen=True)
class VideoWindow:
    """The clip geometry a video model was trained on.

    num_frames: frames per clip; frame_stride: source frames between clip frames (for
    interpolation: of the finest rate); keyframe_spacing: 0 for prediction, else the
    interpolation factor (keyframes at 0, spacing, 2 spacing, ...).
    """

    num_frames: int
    frame_stride: int
    keyframe_spacing: int = 0

    @property
    def keys_per_window(self) -> int:
        """Keyframes in one interpolation window (`drivesim.sampling.interpolation.interpolate`); 0 for prediction."""
        if self.keyframe_spacing < 2:
            return 0
        return (self.num_frames - 1) // self.keyframe_spacing + 1


@dataclass(frozen=True)
class ImageLDM:
    unet: SpatialUNet
    schedule: NoiseSchedule
    target: Target
    unet_config: UNetConfig
    schedule_config: ScheduleConfig


@dataclass(frozen=True)
class VideoLDM:
    model: VideoUNet
    schedule: NoiseSchedule
    target: Target
    window: VideoWindow
    extra: dict[str, Any]


def _stage(folder: Path, stage: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    rec = load_stage(folder, stage)
    return rec.config, rec.extra, rec.state_dict


def diffusion_configs(config: dict[str, Any], where: str) -> tuple[UNetConfig, ScheduleConfig, Target]:
    """(UNetConfig, ScheduleConfig, target) of an image or video stage config."""
    for key in ("unet", "schedule", "target"):
        if key not in config:
            raise ValueError(f"{where}: stage config needs `{key}`; has {sorted(config)}")
    unet = config_from_dict(UNetConfig, config["unet"], f"{where} unet")
    schedule = config_from_dict(ScheduleConfig, config["schedule"], f"{where} schedule")
    return unet, schedule, check_target(str(config["target"]))


def load_image_ldm(folder: Path, stage: str = IMAGE_LDM_STAGE) -> ImageLDM:
    """The image LDM (theta) of a model folder, in eval mode."""
    config, _, state = _stage(folder, stage)
    unet_cfg, schedule_cfg, target = diffusion_configs(config, f"{folder}/config.yaml [{stage}]")
    unet = SpatialUNet(unet_cfg)
    unet.load_state_dict(state)
    return ImageLDM(unet.eval(), NoiseSchedule(schedule_cfg), target, unet_cfg, schedule_cfg)


def load_video_ldm(folder: Path, stage: str = VIDEO_LDM_STAGE) -> VideoLDM:
    """A video model (stage "video_ldm" or "interpolation") of a model folder, in eval mode."""
    config, extra, state = _stage(folder, stage)
    where = f"{folder}/config.yaml [{stage}]"
    unet_cfg, schedule_cfg, target = diffusion_configs(config, where)
    for key in ("video", "window"):
        if key not in config:
            raise ValueError(f"{where}: stage config needs `{key}`; has {sorted(config)}")
    video_cfg = config_from_dict(VideoUNetConfig, config["video"], f"{where} video")
    window = config_from_dict(VideoWindow, config["window"], f"{where} window")
    schedule = NoiseSchedule(schedule_cfg)
    shift = BlendShift(schedule, target) if video_cfg.blend_residual else None
    model = VideoUNet(SpatialUNet(unet_cfg), video_cfg, blend_shift=shift)
    model.load_state_dict(state)
    return VideoLDM(model.eval(), schedule, target, window, extra)
