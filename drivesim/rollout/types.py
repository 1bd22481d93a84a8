"""Rollout state and outputs of the engine, batched over B independent rollouts.

The state is small and explicit: the newest context keyframe latents, the conditions,
the ego state the reward heads predicted, one RNG state per rollout and the step count.
Nothing grows with rollout length. It can be copied (fork), indexed (one rollout out of
a batch), concatenated, saved and restored (safetensors).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from einops import repeat
from safetensors.torch import load_file

from drivesim.data.atomic import atomic_path


@dataclass(frozen=True)
class SceneRequest:
    """What one rollout starts from (validated reset options).

    time_of_day / crowdedness: label indices (-1 = leave to the model / unconditional).
    boxes: (n, 4) float32 normalised x1, y1, x2, y2 (None = not given).
    initial_frames: (k, h, w, 3) uint8 user frames to start from (None = compose one).
    seed: seeds this rollout's generator.
    speed: the ego speed (m/s) at the start, told to a speed-conditioned prediction model
        (None = the reward head's estimate from the first frames, else the world's initial speed).
    """

    time_of_day: int
    crowdedness: int
    seed: int
    boxes: np.ndarray | None = None
    initial_frames: np.ndarray | None = None
    speed: float | None = None


@dataclass(frozen=True)
class RolloutState:
    """B rollouts.

    context: (b, s, c, h, w) latents of the newest s keyframes (s = context frames kept).
    context_actions: (b, s, 2) float32 the actions that led to those keyframes (the model was
        trained on each keyframe's own interval actions); zeros before the first step.
    recent: (b, r, c, h, w) newest output-rate latents, the temporal decoder's left context.
    time_of_day, crowdedness: (b,) int64 label indices (-1 = null).
    speed: (b,) float32 predicted ego speed (m/s) at the newest keyframe (the reward head's).
    context_speed: (b, s) float32 the simulator's ego speed (m/s) at the context keyframes,
        integrated from the commanded accel (`drivesim.rollout.ego_speed`); a speed-conditioned
        prediction model is told it.
    rng: (b, n) uint8 torch.Generator states, one per rollout.
    step: (b,) int64 control steps taken since reset.
    last_frame: (b, h, w, 3) uint8 newest decoded frame (for render and decode context).
    """

    context: torch.Tensor
    context_actions: torch.Tensor
    recent: torch.Tensor
    time_of_day: torch.Tensor
    crowdedness: torch.Tensor
    speed: torch.Tensor
    context_speed: torch.Tensor
    rng: torch.Tensor
    step: torch.Tensor
    last_frame: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.context.shape[0])

    def select(self, index: torch.Tensor | list[int] | slice) -> RolloutState:
        """Rollouts `index` (keeps the batch axis)."""
        if isinstance(index, list):
            index = torch.as_tensor(index, dtype=torch.long)
        return RolloutState(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def clone(self) -> RolloutState:
        """An independent copy: stepping the copy never touches this state (fork)."""
        return RolloutState(**{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def repeat(self, k: int) -> RolloutState:
        """Each rollout repeated k times (b -> b*k), e.g. for K imagined futures."""
        return RolloutState(
            **{f.name: torch.repeat_interleave(getattr(self, f.name), k, dim=0) for f in fields(self)}
        )

    @staticmethod
    def cat(states: list[RolloutState]) -> RolloutState:
        return RolloutState(**{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(RolloutState)})

    def put(self, index: list[int], other: RolloutState) -> RolloutState:
        """A new state with rollouts `index` replaced by `other`'s (same order)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name).clone()
            value[torch.as_tensor(index, dtype=torch.long)] = getattr(other, f.name)
            out[f.name] = value
        return RolloutState(**out)

    def save(self, path: Path) -> None:
        """Write the state as one safetensors file (atomic)."""
        from safetensors.torch import save_file

        tensors = {f.name: getattr(self, f.name).contiguous().cpu() for f in fields(self)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"kind": "drivesim.RolloutState"})

    @staticmethod
    def load(path: Path) -> RolloutState:
        tensors = load_file(str(path))
        names = {f.name for f in fields(RolloutState)}
        if "context_speed" not in tensors and "context" in tensors and "speed" in tensors:
            # saved before context_speed existed: the speed estimate held over the context
            tensors["context_speed"] = repeat(tensors["speed"], "b -> b s", s=tensors["context"].shape[1]).clone()
        if set(tensors) != names:
            raise ValueError(f"{path}: not a RolloutState (tensors {sorted(tensors)}, expected {sorted(names)})")
        return RolloutState(**tensors)

    def with_(self, **changes: torch.Tensor) -> RolloutState:
        return replace(self, **changes)


@dataclass(frozen=True)
class StepOutput:
    """One control interval for B rollouts.

    frames: (b, k, h, w, 3) uint8 output frames of the interval (k = frames per step).
    keyframes: (b, c, h, w) latent of the new keyframe.
    collision, off_road: (b,) float32 predicted probabilities at the new keyframe.
    speed: (b,) float32 the ego speed (m/s) the rewards use (`EngineConfig.speed_source`): by default
        the simulator's, integrated from the commanded accel (`drivesim.rollout.ego_speed`).
    layouts: from start() only, per rollout the box layout its first frame was composed on:
        (xyxy (n, 4) float32 normalised, classes (n,) int64 into VEHICLE_CLASSES; requested
        boxes are cars), or None (no boxes, or started from user frames); empty from step().
    speed_read: (b,) float32 the reward head's reading of the ego speed off the latents (m/s), or
        None (no reward heads).
    pose: (b, 2) float32 the reward heads' reading of [lateral offset from the road centre (lane
        widths, negative = left), heading to the road (rad)], or None (heads without `pose`).
    """

    state: RolloutState
    frames: np.ndarray
    keyframes: torch.Tensor
    collision: np.ndarray
    off_road: np.ndarray
    speed: np.ndarray
    layouts: tuple[tuple[np.ndarray, np.ndarray] | None, ...] = ()
    speed_read: np.ndarray | None = None
    pose: np.ndarray | None = None


@dataclass(frozen=True)
class Imagined:
    """K imagined futures over H control steps from one state (planner API).

    frames: (k, H, f, h, w, 3) uint8; latents: (k, H, c, h, w);
    collision, off_road, speed: (k, H) float32; returns: (k,) float32 summed rewards;
    pose: (k, H, 2) float32 [lateral offset (lane widths), heading (rad)] or None (no pose heads).
    """

    frames: np.ndarray
    latents: torch.Tensor
    collision: np.ndarray
    off_road: np.ndarray
    speed: np.ndarray
    returns: np.ndarray
    pose: np.ndarray | None = None
