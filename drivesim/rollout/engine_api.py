"""What the env and planners need from a rollout engine, and the settings it is built with.

The engine advances B rollouts in one batched call. `start` makes the first frames
(composed from labels/boxes by the image LDM, or encoded from user frames); `step`
predicts the next keyframe from the context with the actions, interpolates the frames
in between, decodes them and optionally upsamples; `imagine` runs K futures from one
state without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from drivesim.rollout.layout import LAYOUT_CHOICES
from drivesim.rollout.types import Imagined, RolloutState, SceneRequest, StepOutput


@dataclass
class EngineConfig:
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N"
    dtype: str = "float32"  # "float32" | "bfloat16" (autocast) | "auto": bfloat16 where native (compute_dtype)
    # the per-step networks' convolution weights: "nchw" | "channels_last" | "auto": channels-last where the
    # compute dtype is bfloat16 (rollout.layout; converts the loaded world's networks in place)
    layout: str = "auto"
    prediction: str = "video_ldm"  # the model folder's keyframe-prediction stage (WorldModel.prediction_stages())
    keyframe_steps: int = 4  # DDIM steps per predicted keyframe (default model: 24 frames/s on 2 CPU cores)
    prediction_window: int = 0  # frames per prediction call (context + new); 0 = the length the model trained on
    first_frame_steps: int = 20  # DDIM steps of the composed first frame
    interpolation_steps: int = 2  # DDIM steps per interpolation level (8: ~3.5x slower, see README)
    spacing: str = "trailing"  # DDIM times of keyframes and interpolation: "trailing" | "linspace" (sampling.ddim)
    # eta of the keyframe sampler (sampling.ddim): 0 = deterministic DDIM, 1 = DDPM's ancestral variance; the noise
    # comes from each rollout's generator, so a seed still gives the same rollout
    keyframe_eta: float = 0.0
    upsample: bool = False
    upsample_steps: int = 8
    context_guidance: float = 1.5  # s in f' = f(z) + s (f(z; c_S) - f(z))
    context_interval: tuple[float, float] = (0.0, 1.0)  # diffusion-time fractions where it acts (docs/results.md)
    label_guidance: float = 2.0  # classifier-free guidance scale of time_of_day (and crowdedness, see below)
    crowdedness_guidance: float | None = 5.0  # None: label_guidance
    crowdedness_contrast: bool = True  # against the next sparser level, not the null (docs/results.md); first
    # frames and, where it is guided, keyframes
    # classifier-free guidance of crowdedness in the keyframe prediction (1 = off; one more model evaluation per DDIM
    # step, two with crowdedness_contrast). Opt-in, measured, not shipped: the probe then reads the asked traffic in
    # 84-88% of clips against 44-53%, but the bundled stages draw it as fiery blobs, not cars (docs/results.md,
    # *Crowdedness over whole clips*)
    keyframe_crowdedness_guidance: float = 1.0
    keyframe_crowdedness_interval: tuple[float, float] = (0.0, 1.0)  # diffusion-time fractions where it acts
    box_guidance: float = 5.0
    box_interval: tuple[float, float] = (0.25, 1.0)  # diffusion times where box guidance acts (docs/results.md)
    sample_layout: bool = True  # first frames composed without boxes: on a layout from the model's layout prior
    action_guidance: float = 1.0
    context_noise: float = -1.0  # context-noise level told to the model; -1: the model's trained default
    # keyframes of the rollout the prediction stage is given as context: 2 (as the state keeps) or 1 (the last
    # only: the motion then comes from the actions, speed and ego warp, not from two drawn keyframes' difference)
    context_keys: int = 2
    warp_start: int = 0  # keyframe DDIM steps replaced by the ego-motion warp of the last keyframe (SDEdit); 0: off
    # move each new keyframe along the road to where the ego speed puts it (rollout.travel_anchor), reading the
    # travel with the folder's odometry stage if it has one, else the fitted warp; measured, opt-in, not shipped:
    # no accel gain at the steer env's setting (docs/results.md, sessions 30-32)
    anchor_travel: bool = False
    anchor_gain: float = 1.0  # the fraction of (told - read) travel anchoring moves a keyframe by (docs/results.md)
    # weight of the ego-motion warp of the last keyframe in the road rows of each new keyframe (latents; the rows
    # below the horizon and above the bonnet, `ego_warp.ground_rows`): 1 = the road wholly moved by the told travel,
    # 0 = off (the model's). Opt-in, measured (docs/results.md, session 34): the action probe reads the accel from
    # the road rows only, and the drawn keyframes' road does not follow the speed
    road_from_warp: float = 0.0
    interpolate: bool = True  # False: one output frame per step (the keyframe itself)
    fill: str = "model"  # frames between keyframes: "model" (interpolation model) | "blend" | "warp" (FILLS)
    fill_keys: int = 3  # keyframes the interpolation model sees a step: 3 (both context + the new, as trained) | 2
    fill_rollouts: int = 8  # most rollouts per interpolation call (rollouts split into groups; 0 = one call)
    decode_frames: int = 18  # most latent frames per temporal-decoder call (rollouts split into groups; 0 = one call)
    codec_frames: int = 8  # most frames per encoder / decoder call of the ego-motion warp's codec (0 = one call)
    reward_discount: float = 0.95  # planner returns
    speed_source: str = "integrated"  # ego speed of info["speed"] and the rewards: reward_reading.SPEED_SOURCES
    compile: bool = False  # torch.compile the per-step networks in place (rollout.compiled; minutes at first steps)

    def __post_init__(self) -> None:
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile={self.compile!r}; allowed: true or false")
        if self.layout not in LAYOUT_CHOICES:
            raise ValueError(f"layout={self.layout!r}; allowed: {list(LAYOUT_CHOICES)}")
        if self.fill_keys not in (2, 3):
            raise ValueError(f"fill_keys={self.fill_keys}; allowed: 2 or 3 (keyframes the interpolation model sees)")
        if self.fill_rollouts < 0:
            raise ValueError(f"fill_rollouts={self.fill_rollouts}; allowed: 0 (one call) or a positive count")
        self.context_interval = _fractions("context_interval", self.context_interval, "context")
        self.keyframe_crowdedness_interval = _fractions("keyframe_crowdedness_interval",
                                                        self.keyframe_crowdedness_interval, "keyframe crowdedness")
        if not 0 <= self.warp_start < self.keyframe_steps:
            raise ValueError(f"warp_start={self.warp_start}; allowed 0 (off) .. keyframe_steps - 1 = "
                             f"{self.keyframe_steps - 1} (keyframe DDIM steps the ego-motion warp replaces)")
        if self.context_keys not in (1, 2):
            raise ValueError(f"context_keys={self.context_keys}; allowed: 1 or 2 (past keyframes the prediction "
                             "stage is given)")
        if not 0.0 <= self.road_from_warp <= 1.0:
            raise ValueError(f"road_from_warp={self.road_from_warp}; allowed [0, 1]: the warp's weight in the road "
                             "rows of a new keyframe (0 = off)")
        if not 0.0 < self.anchor_gain <= 1.0:
            raise ValueError(f"anchor_gain={self.anchor_gain}; allowed (0, 1]: the fraction of the travel error "
                             "anchoring corrects")
        if not 0.0 <= self.keyframe_eta <= 1.0:
            raise ValueError(f"keyframe_eta={self.keyframe_eta}; allowed [0, 1] (0 = deterministic DDIM, 1 = DDPM's "
                             "ancestral variance)")
        if not 0.0 <= self.keyframe_crowdedness_guidance < float("inf"):
            raise ValueError(f"keyframe_crowdedness_guidance={self.keyframe_crowdedness_guidance}; allowed: a finite "
                             "scale >= 0 (1 = off: the keyframes conditional on crowdedness, unguided)")
        if self.decode_frames < 0:
            raise ValueError(f"decode_frames={self.decode_frames}; allowed: 0 (one call) or a positive frame count")
        if self.codec_frames < 0:
            raise ValueError(f"codec_frames={self.codec_frames}; allowed: 0 (one call) or a positive frame count")


def _fractions(name: str, value: Any, what: str) -> tuple[float, float]:
    """An EngineConfig guidance interval checked: [lo, hi] fractions of the diffusion times, 0 <= lo < hi <= 1."""
    interval = tuple(float(v) for v in value)
    if len(interval) != 2 or not 0.0 <= interval[0] < interval[1] <= 1.0:
        raise ValueError(f"{name}={list(value)}; allowed: [lo, hi] with 0 <= lo < hi <= 1 (fractions of the "
                         f"diffusion times where {what} guidance acts)")
    return interval[0], interval[1]


class Engine(Protocol):
    frame_size: tuple[int, int]  # (h, w) of output frames
    frames_per_step: int
    output_fps: float

    def start(self, requests: list[SceneRequest]) -> StepOutput: ...

    def step(self, state: RolloutState, actions: np.ndarray) -> StepOutput: ...

    def imagine(self, state: RolloutState, actions: np.ndarray) -> Imagined: ...


def merge_engine_config(defaults: dict[str, Any] | None, overrides: dict[str, Any] | None) -> EngineConfig:
    """EngineConfig from a registered env's `engine_defaults` (its YAML) with the caller's
    `engine_config` keys over them (a partial dict changes only its own keys)."""
    merged = {**(defaults or {}), **(overrides or {})}
    unknown = sorted(set(merged) - set(EngineConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown engine settings {unknown}; allowed: {sorted(EngineConfig.__dataclass_fields__)}")
    return EngineConfig(**merged)
