"""The action probe's reading of a set of clips against the actions that led to their frames, shared by
`action_pipeline.py` (per stage row) and `closed_loop.py --accel-holds` (per source)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.eval.adherence import (
    action_adherence,
    clip_bootstrap_pearson,
    recover_actions,
    recover_speed,
    window_action_targets,
)
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_io import Probes
from drivesim.eval.report import to_plain


@dataclass(frozen=True)
class ActionReading:
    """targets / recovered (b n, 2): commanded and read [steer, accel] per probe window, in clip order; speed:
    the clip probe's read speed per window; span: the windows' (num_frames, frame_stride, hop)."""

    targets: np.ndarray
    recovered: np.ndarray
    speed: np.ndarray
    span: tuple[int, int, int]

    def report(self, num_clips: int) -> dict:
        """Pearson r, MAE and R^2 of steer and accel, each r's 90% interval over resampled clips, the mean read
        speed, the commanded accel's spread over windows and the number of windows."""
        steer, accel = clip_bootstrap_pearson(self.targets, self.recovered, num_clips)
        return to_plain(action_adherence(self.targets, self.recovered)) | {
            "steer_pearson_90": steer, "accel_pearson_90": accel, "read_speed_mean": float(np.mean(self.speed)),
            "commanded_accel_std": float(np.std(self.targets[:, 1])), "windows": len(self.targets),
        }  # fmt: skip


def read_actions(probes: Probes, frames: np.ndarray, actions: np.ndarray, hop: int) -> ActionReading:
    """Frames (b, t, h, w, 3) uint8 and the actions (b, t, 2) that led to them, read by the action probe (the
    clip probe where there is none) every `hop` frames."""
    video = uint8_to_video(frames)
    reader = probes.action if probes.action is not None else probes.clip
    c = reader.config
    return ActionReading(
        targets=window_action_targets(actions, c.num_frames, c.frame_stride, hop),
        recovered=recover_actions(reader, video, hop, c.frame_stride),
        speed=recover_speed(probes.clip, video, hop, probes.clip.config.frame_stride),
        span=(c.num_frames, c.frame_stride, hop),
    )
