"""What the reward heads read in a rollout, and which ego speed the rewards use.

The reward heads (`drivesim.rollout.reward_model`) were trained on latent pairs `trained_stride`
source frames apart (the stage's `extra.stride`). A rollout step fills the interval between two
keyframes `keyframe_stride` source frames apart with `frames_per_step` latents, so the heads read
the new keyframe with the filled latent `trained_stride` source frames before it; only when the
interval holds no latent there (no interpolation) do they read the two keyframes, with a warning.

Pose: a model folder's optional "pose" stage holds heads with `pose` (lateral offset, heading),
trained apart so that the events keep the "reward" heads' precision; `read` takes the events and
speed from the reward heads and the pose from the pose heads (each at its own trained stride), or
from the reward heads when they have `pose` and there are no pose heads.

Speed: the heads' speed output is kept as `speed_read`; the speed the rewards use is by default
the simulator's ego speed, integrated from the commanded accel (`drivesim.rollout.ego_speed`):
`speed_source="head"` rewards the reading instead (docs/results.md, Reward heads).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from drivesim.rollout.reward_model import RewardModel, RewardPrediction

# "integrated": the simulator's ego speed, integrated from the commanded accel with the world's
# longitudinal dynamics; "head": the reward head's reading of the latents.
SPEED_SOURCES: tuple[str, ...] = ("integrated", "head")


@dataclass(frozen=True)
class HeadReading:
    """(b,) float32 each: p(collision), p(off_road); speed (m/s) read, or None (no heads);
    pose (b, 2) [lateral offset from the road centre (lane widths), heading (rad)] or None
    (heads without `pose`)."""

    collision: np.ndarray
    off_road: np.ndarray
    speed: np.ndarray | None
    pose: np.ndarray | None


class RewardReader:
    def __init__(
        self,
        heads: RewardModel | None,
        trained_stride: int,
        keyframe_stride: int,
        frames_per_step: int,
        speed_source: str = "integrated",
        where: str = "the model",
        pose_heads: RewardModel | None = None,
        pose_stride: int = 4,
    ) -> None:
        if speed_source not in SPEED_SOURCES:
            raise ValueError(f"speed_source={speed_source!r}; allowed: {list(SPEED_SOURCES)}")
        if pose_heads is not None and not pose_heads.config.pose:
            raise ValueError(f"the pose heads of {where} do not read the pose (their config has pose=false)")
        self.heads = heads
        self.pose_heads = pose_heads
        self.speed_source = speed_source
        per_step = (keyframe_stride, frames_per_step)
        self.offset = self._offset(heads, trained_stride, *per_step, f"reward heads of {where}")
        self.pose_offset = self._offset(pose_heads, pose_stride, *per_step, f"pose heads of {where}")

    @staticmethod
    def _offset(
        heads: RewardModel | None, stride: int, keyframe_stride: int, frames_per_step: int, where: str
    ) -> int | None:
        """Latents between the read pair within a filled interval; None: the two newest keyframes."""
        if heads is None or stride == keyframe_stride:
            return None
        spacing, rem = divmod(keyframe_stride, frames_per_step)  # source frames per filled latent
        if rem or stride > keyframe_stride or stride % spacing:
            warnings.warn(
                f"the {where} were trained on latents {stride} source frames apart; this "
                f"engine has one every {keyframe_stride / frames_per_step:g} within {keyframe_stride}-frame "
                "keyframe intervals, so they read the two newest keyframes",
                stacklevel=4,
            )
            return None
        return stride // spacing

    @property
    def reads_pose(self) -> bool:
        """Whether `read` gives a pose (pose heads, or reward heads with `pose`)."""
        return self.pose_heads is not None or (self.heads is not None and self.heads.config.pose)

    def pair(self, keys: Tensor, fresh: Tensor) -> Tensor:
        """The (b, 2, c, h, w) latents the reward heads read. keys (b, k, c, h, w) keyframes, newest
        last; fresh (b, f, c, h, w) the filled interval after keys[:, -2], its last latent the new keyframe."""
        return self._pair(keys, fresh, self.offset)

    @staticmethod
    def _pair(keys: Tensor, fresh: Tensor | None, offset: int | None) -> Tensor:
        """As `pair`, `offset` latents apart within the interval (None, or no interval: the keyframes)."""
        if offset is None or fresh is None:
            return keys[:, -2:]
        interval = torch.cat([keys[:, -2:-1], fresh], dim=1)  # b (1 + f) c h w
        return interval[:, [-1 - offset, -1]]

    @torch.no_grad()
    def read(self, keys: Tensor, fresh: Tensor | None = None) -> HeadReading:
        """What the heads read after a step (fresh: its filled interval) or at the start (fresh None:
        no interval yet, both read the two newest keyframes): events and speed from the reward heads,
        the pose from the pose heads when there are any."""
        reading = self.heads_read(self._pair(keys, fresh, self.offset))
        if self.pose_heads is None:
            return reading
        pose = _pose(self.pose_heads(self._pair(keys, fresh, self.pose_offset)))
        return HeadReading(reading.collision, reading.off_road, reading.speed, pose)

    @torch.no_grad()
    def heads_read(self, pair: Tensor) -> HeadReading:
        """(b, 2, c, h, w) latents -> what the heads read (zeros and None without heads)."""
        if self.heads is None:
            zeros = np.zeros(pair.shape[0], np.float32)
            return HeadReading(zeros, zeros, None, None)
        p = self.heads(pair)
        return HeadReading(_numpy(p.collision), _numpy(p.off_road), _numpy(p.speed), _pose(p))

    def rewarded_speed(self, integrated: Tensor, read: np.ndarray | None) -> np.ndarray:
        """(b,) the ego speed the rewards use: the integrated one, or the heads' reading."""
        if self.speed_source == "head" and read is not None:
            return read
        return integrated.float().cpu().numpy().astype(np.float32)


def _numpy(x: Tensor) -> np.ndarray:
    return x.float().cpu().numpy().astype(np.float32)


def _pose(p: RewardPrediction) -> np.ndarray | None:
    """(b, 2) [lateral offset, heading] of a prediction, or None (heads without `pose`)."""
    return None if p.lateral_offset is None else _numpy(torch.stack([p.lateral_offset, p.heading], dim=1))
