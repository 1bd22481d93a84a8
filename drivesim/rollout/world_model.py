"""`drivesim.load(path=None)`: the world model of a checkpoint folder, all stages chained.

A model folder holds one `<stage>.safetensors` per stage and `config.yaml`; the stages
used here are autoencoder, temporal_decoder (optional: the image decoder is used
otherwise), image_ldm (first frames), video_ldm (keyframe prediction), interpolation
(optional), upsampler / upsampler_temporal (optional), reward (optional: without it
rewards and events are not predicted), pose (optional: heads that read the ego's lateral offset
and heading, beside the reward heads), layout_prior (optional: first frames composed from
labels alone then get no sampled layout) and odometry (optional: a learned reader of the travel
between two frames, which `EngineConfig.anchor_travel` then uses instead of the fitted warp).
Further keyframe-prediction models may sit beside video_ldm as stages named `video_ldm_<name>`
(the bundle's `video_ldm_stride4`: keyframes 4 source frames apart, which follows the steering);
`WorldModel.prediction(stage)` loads one on first use and `EngineConfig.prediction` picks it.
Loading reads YAML and safetensors only; `drivesim.rollout.engine.LearnedEngine(world, config)` rolls it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from drivesim.autoencoder.loading import load_autoencoder, load_temporal_decoder
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder
from drivesim.diffusion.layout_prior import LayoutPrior, load_layout_prior
from drivesim.diffusion.upsampler import Upsampler, load_upsampler
from drivesim.diffusion.upsampler_temporal import TemporalUpsampler, load_temporal_upsampler
from drivesim.diffusion.video_loading import (
    INTERPOLATION_STAGE,
    VIDEO_LDM_STAGE,
    ImageLDM,
    VideoLDM,
    load_image_ldm,
    load_video_ldm,
)
from drivesim.model_folder import read_folder_config
from drivesim.paths import default_model_dir
from drivesim.rollout.odometry import TravelReader, load_travel_reader
from drivesim.rollout.reward_model import RewardModel, load_heads


@dataclass
class WorldModel:
    """Every stage of one model folder; `engine(config)` makes a rollout engine over them."""

    path: Path
    autoencoder: Autoencoder
    temporal_decoder: TemporalDecoder | None
    image_ldm: ImageLDM
    video: VideoLDM
    interpolation: VideoLDM | None
    reward: RewardModel | None
    upsampler: TemporalUpsampler | Upsampler | None
    reward_stride: int
    fps: float
    metadata: dict[str, Any]
    layout_prior: LayoutPrior | None = None
    pose: RewardModel | None = None  # heads with `pose` (stage "pose"); read for the pose only
    pose_stride: int = 4  # source frames between the two latents the pose heads read
    predictions: dict[str, VideoLDM] = field(default_factory=dict)  # further prediction stages, once loaded
    odometry: TravelReader | None = None  # stage "odometry": travel between frames (rollout/odometry.py)
    odometry_stride: int = 4  # source frames between the two frames it reads

    def pose_heads(self) -> tuple[RewardModel, int] | None:
        """The heads that read the pose and their trained pair stride: the "pose" stage, else reward
        heads with `pose`, else None."""
        if self.pose is not None:
            return self.pose, self.pose_stride
        if self.reward is not None and self.reward.config.pose:
            return self.reward, self.reward_stride
        return None

    def prediction_stages(self) -> list[str]:
        """The keyframe-prediction stages of the folder: "video_ldm" and any "video_ldm_<name>"."""
        found = {p.stem for p in self.path.glob(f"{VIDEO_LDM_STAGE}_*.safetensors")} | set(self.predictions)
        return [VIDEO_LDM_STAGE, *sorted(found)]

    def prediction(self, stage: str = VIDEO_LDM_STAGE) -> VideoLDM:
        """The keyframe-prediction model of `stage` (one of `prediction_stages()`), loaded on first use."""
        if stage == VIDEO_LDM_STAGE:
            return self.video
        if stage not in self.predictions:
            if not stage.startswith(f"{VIDEO_LDM_STAGE}_") or not _has(self.path, stage):
                raise ValueError(
                    f"prediction={stage!r}: model folder {self.path} has no such prediction stage; "
                    f"allowed: {self.prediction_stages()}"
                )
            self.predictions[stage] = load_video_ldm(self.path, stage)
        return self.predictions[stage]

    def to(self, device: torch.device | str) -> WorldModel:
        for module in self.modules():
            module.to(device)
        return self

    def modules(self) -> list[torch.nn.Module]:
        mods = [self.autoencoder, self.image_ldm.unet, self.video.model]
        optional = (self.temporal_decoder, self.reward, self.pose, self.upsampler, self.odometry)
        mods += [m for m in optional if m is not None]
        if self.interpolation is not None:
            mods.append(self.interpolation.model)
        return mods + [v.model for v in self.predictions.values()]


def _has(folder: Path, stage: str) -> bool:
    return (folder / f"{stage}.safetensors").is_file()


def load(path: str | Path | None = None) -> WorldModel:
    """The world model in `path` (a model folder); None loads the bundled default."""
    folder = Path(path) if path is not None else default_model_dir()
    if not folder.is_dir():
        hint = "" if path is not None else " (the bundled default model is not installed in this build)"
        raise FileNotFoundError(f"model folder {folder} does not exist{hint}")
    required = ("autoencoder", "image_ldm", "video_ldm")
    missing = [s for s in required if not _has(folder, s)]
    if missing:
        present = sorted(p.stem for p in folder.glob("*.safetensors"))
        raise FileNotFoundError(f"model folder {folder} lacks stage(s) {missing}; present: {present}")
    config = read_folder_config(folder)
    reward, stride = load_heads(folder, config, "reward")
    pose, pose_stride = load_heads(folder, config, "pose")
    if pose is not None and not pose.config.pose:
        raise ValueError(f"model folder {folder}: stage 'pose' has pose=false in its config; it must read the pose")
    upsampler = None
    if _has(folder, "upsampler_temporal"):
        upsampler = load_temporal_upsampler(folder)
    elif _has(folder, "upsampler"):
        upsampler = load_upsampler(folder)
    video = load_video_ldm(folder)
    fps = float(config["video_ldm"].get("extra", {}).get("fps", 30.0))
    odometry = load_travel_reader(folder)
    return WorldModel(
        path=folder,
        autoencoder=load_autoencoder(folder),
        temporal_decoder=load_temporal_decoder(folder) if _has(folder, "temporal_decoder") else None,
        image_ldm=load_image_ldm(folder),
        video=video,
        interpolation=load_video_ldm(folder, INTERPOLATION_STAGE) if _has(folder, INTERPOLATION_STAGE) else None,
        reward=reward,
        upsampler=upsampler,
        reward_stride=stride,
        fps=fps,
        metadata={k: v.get("extra", {}) for k, v in config.items() if isinstance(v, dict)},
        layout_prior=load_layout_prior(folder),
        pose=pose,
        pose_stride=pose_stride,
        odometry=None if odometry is None else odometry[0],
        odometry_stride=4 if odometry is None else odometry[1],
    )
