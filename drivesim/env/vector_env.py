"""One batched VectorEnv over the engine: all sub-envs advance in a single batched
model call (not N copies in a loop). Autoreset follows Gymnasium 1.x next-step mode: the
step after an episode ends resets that sub-env (its action is ignored, reward 0).
Sub-env i is seeded with seed + i, so it behaves like DriveWorldEnv reset with seed + i.
Step info: "frames" (n, t, h, w, 3), "rewards" (term -> (n,)), "step" (n,), and with a model that
reads the pose "lateral_offset" / "heading" (n,) (NaN for sub-envs reset this step).
"""

from __future__ import annotations

import reprlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from drivesim.env.drive_env import layout_info, make_spaces
from drivesim.env.meta_actions import meta_to_continuous
from drivesim.env.options import CROWDEDNESS, TIME_OF_DAY, check_action, parse_options
from drivesim.rollout.engine import build_engine
from drivesim.rollout.engine_api import Engine, merge_engine_config
from drivesim.rollout.rewards import compute_rewards, reward_config
from drivesim.rollout.types import RolloutState


def check_seeds(seed: Any, num_envs: int) -> list[int | None]:
    """reset(seed=...) of the vector env: an int s >= 0 (sub-env i gets s + i) or a list of
    num_envs ints >= 0 or None (None: a fresh random seed, as in Gymnasium); ValueError otherwise."""

    def ok(s: Any) -> bool:
        return isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 0

    if ok(seed):
        return [int(seed) + i for i in range(num_envs)]
    if not isinstance(seed, (list, tuple, np.ndarray)):
        raise ValueError(f"seed={reprlib.repr(seed)} is not allowed; expected an int >= 0 or a list of num_envs ints")
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"seed list has {len(seeds)} entries; expected num_envs={num_envs}")
    bad = [s for s in seeds if s is not None and not ok(s)]
    if bad:
        raise ValueError(f"seed list entry {reprlib.repr(bad[0])} is not allowed; expected ints >= 0 or None")
    return [None if s is None else int(s) for s in seeds]


class DriveWorldVectorEnv(VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        model: str | None = None,
        engine: Engine | None = None,
        engine_config: dict[str, Any] | None = None,
        action_type: str = "continuous",
        engine_defaults: dict[str, Any] | None = None,
        reward: dict[str, Any] | None = None,
        horizon_steps: int = 600,
        render_mode: str | None = "rgb_array",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        self.num_envs = num_envs
        if engine is None:
            engine = build_engine(model, merge_engine_config(engine_defaults, engine_config))
        self.engine = engine
        self.action_type = action_type
        self.reward_config = reward_config(reward)
        if horizon_steps < 1:
            raise ValueError(f"horizon_steps={horizon_steps} must be >= 1")
        self.horizon_steps = horizon_steps
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        h, w = self.engine.frame_size
        self.single_observation_space, self.single_action_space = make_spaces(h, w, action_type)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {**self.metadata, "render_fps": self.engine.output_fps}
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._state: RolloutState | None = None
        self._needs_reset = np.zeros(num_envs, bool)
        self._pose = False  # set at reset: whether the engine reads the pose

    def _requests(self, idx: list[int], options: dict[str, Any] | None):
        h, w = self.engine.frame_size
        return [parse_options(options, int(self._rngs[i].integers(2**31 - 1)), self._rngs[i], h, w) for i in idx]

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seeds = check_seeds(seed, self.num_envs)
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        requests = self._requests(list(range(self.num_envs)), options)
        out = self.engine.start(requests)
        self._state = out.state
        self._needs_reset[:] = False
        self._pose = out.pose is not None  # the engine's heads read the pose: lane terms, pose info
        info = {
            "frames": out.frames,
            "time_of_day": np.array([TIME_OF_DAY[r.time_of_day] for r in requests]),
            "crowdedness": np.array([CROWDEDNESS[r.crowdedness] for r in requests]),
            "layout": np.array(
                [layout_info(out.layouts[i]) if out.layouts else None for i in range(len(requests))], dtype=object
            ),
        }
        return out.frames[:, -1], info

    def step(self, actions: Any):
        if self._state is None:
            raise ValueError("call reset() before step()")
        if self.action_type == "discrete":
            cont = meta_to_continuous(actions, self.num_envs)
        else:
            cont = check_action(actions, self.num_envs)
        n = self.num_envs
        obs = np.zeros(self.observation_space.shape, np.uint8)
        reward = np.zeros(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        frames = np.zeros((n, self.engine.frames_per_step, *self.single_observation_space.shape), np.uint8)
        names = ("collision", "high_speed", "on_road") + (("right_lane", "lane_centering") if self._pose else ())
        terms = {k: np.zeros(n, np.float32) for k in names}
        pose = np.full((n, 2), np.nan, np.float32)  # rollouts reset this step read nothing
        live = [i for i in range(n) if not self._needs_reset[i]]
        done_before = [i for i in range(n) if self._needs_reset[i]]
        state = self._state
        if live:
            out = self.engine.step(state.select(live), cont[live])
            state = state.put(live, out.state)
            r = compute_rewards(self.reward_config, out.collision, out.off_road, out.speed, out.pose)
            obs[live] = out.frames[:, -1]
            frames[live] = out.frames
            reward[live] = r.total
            terminated[live] = r.terminated
            truncated[live] = out.state.step.numpy() >= self.horizon_steps
            for k in terms:
                terms[k][live] = getattr(r, k)
            if out.pose is not None:
                pose[live] = out.pose
        if done_before:
            out = self.engine.start(self._requests(done_before, None))
            state = state.put(done_before, out.state)
            obs[done_before] = out.frames[:, -1]
            frames[done_before, -1] = out.frames[:, -1]
        self._state = state
        self._needs_reset = terminated | truncated
        info = {"frames": frames, "rewards": terms, "step": state.step.numpy().copy()}
        if self._pose:
            info.update(lateral_offset=pose[:, 0], heading=pose[:, 1])
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self._state is None:
            return None
        return self._state.last_frame.numpy()

    def get_state(self) -> RolloutState:
        if self._state is None:
            raise ValueError("call reset() before get_state()")
        return self._state.clone()


def make_vector_env(num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """vector_entry_point of the registered ids (gymnasium.make_vec)."""
    kwargs.pop("max_episode_steps", None)
    return DriveWorldVectorEnv(num_envs=num_envs, **kwargs)
