"""A small deterministic engine implementing the Engine protocol without networks.

It exercises the env's bookkeeping (batching, autoreset, seeding, fork/restore, rewards)
independently of the learned stages; the real engine is tested in tests/rollout.
Frames are a function of the per-rollout RNG stream, the actions and the labels.
"""

from __future__ import annotations

import numpy as np
import torch

from drivesim.rollout.types import Imagined, RolloutState, SceneRequest, StepOutput


class ScriptedEngine:
    frame_size = (16, 32)
    frames_per_step = 4
    output_fps = 30.0

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def _frames(self, gens: list[torch.Generator], base: torch.Tensor, k: int) -> np.ndarray:
        h, w = self.frame_size
        noise = torch.stack([torch.rand(k, h, w, 3, generator=g) for g in gens])  # (b, k, h, w, 3)
        return (base[:, None, None, None, None] * 0.5 + noise * 0.5).mul(255).to(torch.uint8).numpy()

    def start(self, requests: list[SceneRequest]) -> StepOutput:
        self.calls.append(("start", len(requests)))
        gens = [torch.Generator().manual_seed(r.seed) for r in requests]
        tod = torch.tensor([r.time_of_day for r in requests])
        frames = self._frames(gens, 1.0 - tod.float(), 1)
        b = len(requests)
        state = RolloutState(
            context=torch.zeros(b, 2, 4, 2, 4),
            context_actions=torch.zeros(b, 2, 2),
            recent=torch.zeros(b, 0, 4, 2, 4),
            time_of_day=tod,
            crowdedness=torch.tensor([r.crowdedness for r in requests]),
            speed=torch.full((b,), 20.0),
            context_speed=torch.full((b, 2), 20.0),
            rng=torch.stack([g.get_state() for g in gens]),
            step=torch.zeros(b, dtype=torch.long),
            last_frame=torch.from_numpy(frames[:, -1].copy()),
        )
        zeros = np.zeros(b, np.float32)
        return StepOutput(state, frames, state.context[:, -1], zeros, zeros, state.speed.numpy())

    def step(self, state: RolloutState, actions: np.ndarray) -> StepOutput:
        self.calls.append(("step", state.batch_size))
        gens = []
        for s in state.rng:
            g = torch.Generator()
            g.set_state(s.clone())
            gens.append(g)
        act = torch.from_numpy(actions)
        speed = (state.speed + 5.0 * act[:, 1]).clamp(0, 40)
        frames = self._frames(gens, (1.0 - state.time_of_day.float()) * 0.5 + 0.25 * act[:, 0], self.frames_per_step)
        new = state.with_(
            context=torch.roll(state.context, 1, dims=1) + act[:, None, :1, None, None],
            speed=speed,
            rng=torch.stack([g.get_state() for g in gens]),
            step=state.step + 1,
            last_frame=torch.from_numpy(frames[:, -1].copy()),
        )
        collision = (act[:, 1] < -0.99).float().numpy()  # "brake to the floor" = crash, for tests
        off_road = (act[:, 0].abs() > 0.99).float().numpy()
        return StepOutput(new, frames, new.context[:, -1], collision, off_road, speed.numpy())

    def imagine(self, state: RolloutState, actions: np.ndarray) -> Imagined:
        raise ValueError("ScriptedEngine does not imagine")
