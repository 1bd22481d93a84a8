"""Imagined futures for planners: K action sequences rolled out from one engine state.

    imagined = imagine_futures(engine, state, actions)   # actions (K, H, 2) -> Imagined

The state (batch 1) is repeated K times; each future gets its own generator, derived from the
state's generator and the future's index, so K copies of one action sequence give K different
samples and the caller's `state` is never touched. Returns are the discounted sums of the
reward terms (`drivesim.rollout.rewards`) over the horizon H.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.rewards import RewardConfig, compute_rewards
from drivesim.rollout.types import Imagined, RolloutState, StepOutput


class _Stepper(Protocol):
    config: EngineConfig  # reads `reward_discount`

    def step(self, state: RolloutState, actions: np.ndarray) -> StepOutput: ...


def fork(state: RolloutState, k: int) -> RolloutState:
    """`state` (batch 1) repeated k times, each copy with its own generator."""
    seeds = torch.Generator()
    seeds.set_state(state.rng[0].clone())
    fork_seeds = torch.randint(0, 2**62, (k,), generator=seeds).tolist()
    return state.repeat(k).with_(rng=torch.stack([torch.Generator().manual_seed(s).get_state() for s in fork_seeds]))


def imagine_futures(
    engine: _Stepper, state: RolloutState, actions: np.ndarray, reward: RewardConfig, decode: bool = True
) -> Imagined:
    """K futures of `engine` from `state` (batch 1) under actions (K, H, 2) [steer, accel]."""
    if state.batch_size != 1:
        raise ValueError(f"imagine() starts from one rollout; got a state of batch size {state.batch_size}")
    if actions.ndim != 3 or actions.shape[2] != 2:
        raise ValueError(f"actions must have shape (K, H, 2), got {actions.shape}")
    k, horizon = actions.shape[:2]
    st = fork(state, k)
    frames, latents, col, off, spd, poses = [], [], [], [], [], []
    for h in range(horizon):
        out = engine.step(st, np.ascontiguousarray(actions[:, h]))
        st = out.state
        if decode:
            frames.append(out.frames)  # k f H W 3
        latents.append(out.keyframes)  # k c h w
        col.append(out.collision)
        off.append(out.off_road)
        spd.append(out.speed)
        poses.append(out.pose)
    collision, off_road, speed = np.stack(col, 1), np.stack(off, 1), np.stack(spd, 1)  # k H
    pose = None if poses[0] is None else np.stack(poses, 1)  # k H 2
    terms = compute_rewards(reward, collision, off_road, np.nan_to_num(speed), pose)
    discount = engine.config.reward_discount ** np.arange(horizon)
    return Imagined(
        frames=np.stack(frames, 1) if decode else np.zeros((k, horizon, 0), np.uint8),
        latents=torch.stack(latents, 1),
        collision=collision,
        off_road=off_road,
        speed=speed,
        returns=(terms.total * discount).sum(1).astype(np.float32),
        pose=pose,
    )
